"""`givance mail list` / `givance mail show ID` read what the development catcher caught."""

from __future__ import annotations

import uuid

from givance.comms.v1 import message_service_pb2 as mpb

from cli import givance


async def test_mail_list_and_show_read_the_catchers_folder(stubs, tenant, mailbox, capsys):
    to = f"cli-{uuid.uuid4().hex[:8]}@example.org"
    await stubs.messages.SendMessage(mpb.SendMessageRequest(
        to_address=to, template_name="thank-you", variables={"amount": "$5", "date": "today"}), metadata=tenant.md)
    await mailbox.wait_for(to)
    folder = str(mailbox.folder)
    assert givance.main(["mail", "--mail-dir", folder, "list"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if to in ln]
    mail_id = line.split()[0]
    assert "Thank you, friend" in line
    assert givance.main(["mail", "--mail-dir", folder, "show", mail_id]) == 0
    out = capsys.readouterr().out
    assert f"To: {to}" in out and "Thank you for your gift of $5 on today" in out and "\r" not in out
    assert givance.main(["mail", "--mail-dir", folder, "show", mail_id, "--raw"]) == 0
    assert "Content-Type: multipart/alternative" in capsys.readouterr().out
    assert givance.main(["mail", "--mail-dir", folder, "show", "no-such-id"]) == 1
