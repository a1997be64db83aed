"""givance: a small command-line client for the Givance gRPC services.

    givance signup --email ada@example.org --password '...' --org "Hope Fund"
    givance donors create --first-name Ada --last-name Lovelace --email ada@example.org
    givance donations record --donor <donor id> --amount 25.00 --method check
    givance donors get <donor id>
    givance donors move-stage <donor id> --stage first_contact --reason "replied to the letter"
    givance donors import donors.csv        # upsert by external_id; rejected rows with reasons
    givance donors export > donors.csv      # every donor, as CSV that imports again

Sign-up and login keep the session (tokens, organization id, user id) in a JSON file,
$GIVANCE_CONFIG or ~/.config/givance/session.json (mode 0600); every other command sends
`authorization: Bearer <access token>` and `x-tenant-id: <organization id>` from it, and
refreshes the access token once, with the stored refresh token, when a call answers
UNAUTHENTICATED. Responses are printed as JSON; an error prints its code, message and field
violations to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

import grpc
from givance.crm.v1 import (
    donation_pb2,
    donation_service_pb2_grpc,
    donor_pb2,
    donor_service_pb2_grpc,
    journey_service_pb2_grpc,
)
from givance.crm.v1 import donation_service_pb2 as donation_api
from givance.crm.v1 import donor_service_pb2 as donor_api
from givance.crm.v1 import journey_service_pb2 as journey_api
from givance.identity.v1 import identity_service_pb2 as identity_api
from givance.identity.v1 import identity_service_pb2_grpc, organization_service_pb2_grpc, user_pb2
from givance.identity.v1 import organization_service_pb2 as organization_api
from google.protobuf import field_mask_pb2
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from google.type import date_pb2, money_pb2

DEFAULT_IDENTITY = "127.0.0.1:50051"
DEFAULT_CRM = "127.0.0.1:50052"
NANOS_PER_UNIT = Decimal(1_000_000_000)

DONOR_TYPES = {"individual": donor_pb2.DONOR_TYPE_INDIVIDUAL, "couple": donor_pb2.DONOR_TYPE_COUPLE}
PAYMENT_METHODS = {
    "cash": donation_pb2.PAYMENT_METHOD_CASH,
    "check": donation_pb2.PAYMENT_METHOD_CHECK,
    "credit_card": donation_pb2.PAYMENT_METHOD_CREDIT_CARD,
    "wire": donation_pb2.PAYMENT_METHOD_WIRE,
    "crypto": donation_pb2.PAYMENT_METHOD_CRYPTO,
    "other": donation_pb2.PAYMENT_METHOD_OTHER,
}

# Donor flags: argparse dest -> the Donor field path, which is also its UpdateDonor mask path.
# (--stage exists on create only: afterwards a stage moves with `donors move-stage`.)
DONOR_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "type": "type",
    "spouse_first_name": "spouse_first_name",
    "spouse_last_name": "spouse_last_name",
    "spouse_email": "spouse_email",
    "street": "address.street",
    "city": "address.city",
    "state": "address.state",
    "postal_code": "address.postal_code",
    "country": "address.country",
    "stage": "journey_stage",
    "external_id": "external_id",
    "notes": "notes",
    "tags": "tags",
}


class CliError(Exception):
    """A problem on this side of the wire (no session, nothing to update)."""


# -- the session file ------------------------------------------------------------------------


def session_path() -> Path:
    configured = os.environ.get("GIVANCE_CONFIG")
    return Path(configured) if configured else Path.home() / ".config" / "givance" / "session.json"


@dataclass
class Session:
    access_token: str = ""
    refresh_token: str = ""
    organization_id: str = ""
    user_id: str = ""

    @classmethod
    def load(cls, path: Path) -> Session:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read the session file {path}: {exc}") from None
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in names})

    def save(self, path: Path) -> None:
        """Written whole (temporary file, then rename), readable by its owner only."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".session-")  # created with mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(self), f, indent=2)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def keep(self, tokens: user_pb2.TokenPair) -> None:
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        self.organization_id = tokens.organization_id
        self.user_id = tokens.user_id


# -- calling the services --------------------------------------------------------------------


class Client:
    def __init__(self, identity_address: str, crm_address: str, session_file: Path, timeout: float):
        self.session_file = session_file
        self.session = Session.load(session_file)
        self.timeout = timeout
        self._identity_channel = grpc.insecure_channel(identity_address)
        self._crm_channel = grpc.insecure_channel(crm_address)
        self.identity = identity_service_pb2_grpc.IdentityServiceStub(self._identity_channel)
        self.organizations = organization_service_pb2_grpc.OrganizationServiceStub(self._identity_channel)
        self.donors = donor_service_pb2_grpc.DonorServiceStub(self._crm_channel)
        self.donations = donation_service_pb2_grpc.DonationServiceStub(self._crm_channel)
        self.journeys = journey_service_pb2_grpc.JourneyServiceStub(self._crm_channel)

    def close(self) -> None:
        self._identity_channel.close()
        self._crm_channel.close()

    def public(self, rpc: Callable, request: Message) -> Message:
        """A call that needs no token (sign-up, login, refresh)."""
        return rpc(request, timeout=self.timeout)

    def call(self, rpc: Callable, request: Message) -> Message:
        """An authenticated call; an expired access token is refreshed once and the call retried."""
        try:
            return rpc(request, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAUTHENTICATED or not self.session.refresh_token:
                raise
        self.refresh()
        return rpc(request, metadata=self._metadata(), timeout=self.timeout)

    def stream(self, rpc: Callable, make_request: Callable[[], object]):
        """A streaming call (requests from make_request(), a fresh iterator per attempt); an
        expired access token is refreshed once, before any response arrived."""
        try:
            responses = rpc(make_request(), metadata=self._metadata())
            first = next(responses, None)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAUTHENTICATED or not self.session.refresh_token:
                raise
            self.refresh()
            responses = rpc(make_request(), metadata=self._metadata())
            first = next(responses, None)
        if first is not None:
            yield first
            yield from responses

    def refresh(self) -> identity_api.RefreshTokenResponse:
        if not self.session.refresh_token:
            raise CliError("no refresh token: run `givance login` first")
        response = self.public(self.identity.RefreshToken,
                               identity_api.RefreshTokenRequest(refresh_token=self.session.refresh_token))
        self.remember(response.tokens)
        return response

    def remember(self, tokens: user_pb2.TokenPair) -> None:
        self.session.keep(tokens)
        self.session.save(self.session_file)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        if not (self.session.access_token and self.session.organization_id):
            raise CliError("not signed in: run `givance signup` or `givance login` first")
        return (("authorization", f"Bearer {self.session.access_token}"),
                ("x-tenant-id", self.session.organization_id))


def report(err: grpc.RpcError) -> None:
    """Code, message and the google.rpc.Status details a client can act on, to stderr."""
    print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                for violation in bad.field_violations:
                    print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                print(f"  reason: {info.reason} ({info.domain})", file=sys.stderr)


# -- values ----------------------------------------------------------------------------------


def amount(text: str) -> Decimal:
    """An exact decimal amount (never a float); at most nine decimal places fit google.type.Money."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value.as_tuple().exponent < -9:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}")
    return value


def money(value: Decimal, currency: str) -> money_pb2.Money:
    units = int(value)  # toward zero, so units and nanos share the sign, as Money wants
    nanos = int((value - units) * NANOS_PER_UNIT)
    return money_pb2.Money(currency_code=currency.upper(), units=units, nanos=nanos)


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def date(day: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def donor_from_args(args: argparse.Namespace) -> tuple[donor_pb2.Donor, list[str]]:
    """The Donor the flags describe, and the paths of the fields they set."""
    donor = donor_pb2.Donor()
    paths = []
    for dest, path in DONOR_FIELDS.items():
        value = getattr(args, dest, None)  # `donors update` has no --stage
        if value is None:
            continue
        paths.append(path)
        if dest == "tags":
            donor.tags.extend(t for t in value if t)  # --tag '' alone clears the tags
        elif dest == "type":
            donor.type = DONOR_TYPES[value]
        elif path.startswith("address."):
            setattr(donor.address, path.removeprefix("address."), value)
        else:
            setattr(donor, path, value)
    return donor, paths


# -- commands: each returns the response to print ---------------------------------------------


def signup(client: Client, args: argparse.Namespace) -> Message:
    response = client.public(client.identity.SignUp, identity_api.SignUpRequest(
        email=args.email, password=args.password, organization_name=args.org,
        first_name=args.first_name or "", last_name=args.last_name or ""))
    client.remember(response.tokens)
    return response


def login(client: Client, args: argparse.Namespace) -> Message:
    response = client.public(client.identity.Login, identity_api.LoginRequest(
        email=args.email, password=args.password, organization_id=args.org or ""))
    client.remember(response.tokens)
    return response


def refresh(client: Client, args: argparse.Namespace) -> Message:
    return client.refresh()


def organization(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.organizations.GetOrganization,
                       organization_api.GetOrganizationRequest(id=client.session.organization_id))


def donors_create(client: Client, args: argparse.Namespace) -> Message:
    donor, _ = donor_from_args(args)
    return client.call(client.donors.CreateDonor,
                       donor_api.CreateDonorRequest(donor=donor, request_id=args.request_id or ""))


def donors_get(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.donors.GetDonor, donor_api.GetDonorRequest(id=args.id))


def donors_list(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.donors.ListDonors, donor_api.ListDonorsRequest(
        journey_stage=args.stage or "", tag=args.tag or "", email=args.email or "",
        order_by=args.order_by or "", page_size=args.page_size, page_token=args.page_token or ""))


def donors_update(client: Client, args: argparse.Namespace) -> Message:
    donor, paths = donor_from_args(args)
    if not paths:  # an empty mask would mean "replace every field"
        raise CliError("nothing to update: name at least one field, e.g. --email")
    donor.id = args.id
    donor.etag = args.etag or ""
    return client.call(client.donors.UpdateDonor, donor_api.UpdateDonorRequest(
        donor=donor, update_mask=field_mask_pb2.FieldMask(paths=paths)))


def donors_move_stage(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.journeys.MoveDonorStage, journey_api.MoveDonorStageRequest(
        donor_id=args.id, to_stage=args.stage, reason=args.reason, etag=args.etag or ""))


def donors_delete(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.donors.DeleteDonor, donor_api.DeleteDonorRequest(id=args.id, etag=args.etag or ""))


IMPORT_CHUNK = 64 * 1024


def donors_import(client: Client, args: argparse.Namespace) -> Message:
    """Stream a CSV file in chunks; progress to stderr; the summary, with every rejected row."""
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")

    def chunks():
        with path.open("rb") as f:
            while chunk := f.read(IMPORT_CHUNK):
                yield donor_api.ImportDonorsRequest(csv_chunk=chunk)

    summary = donor_api.ImportDonorsResponse()
    for progress in client.stream(client.donors.ImportDonors, chunks):
        rejections = list(summary.rejections) + list(progress.rejections)
        summary.CopyFrom(progress)
        del summary.rejections[:]
        summary.rejections.extend(rejections)
        if progress.done:  # the final totals repeat the last batch's: they are the summary printed below
            continue
        print(f"read {progress.rows_read}: created {progress.created}, updated {progress.updated}, "
              f"rejected {progress.rejected}", file=sys.stderr)
    return summary


def donors_export(client: Client, args: argparse.Namespace) -> None:
    """Every donor as CSV (ImportDonors' header) to stdout."""
    request = donor_api.ExportDonorsRequest(format=donor_api.EXPORT_FORMAT_CSV, journey_stage=args.stage or "",
                                            tag=args.tag or "")
    out = sys.stdout.buffer
    for chunk in client.stream(client.donors.ExportDonors, lambda: request):
        out.write(chunk.csv_chunk)
    out.flush()
    return None


def donations_record(client: Client, args: argparse.Namespace) -> Message:
    donation = donation_pb2.Donation(
        donor_id=args.donor, project_id=args.project or "", amount=money(args.amount, args.currency),
        date=date(args.date or dt.date.today()),
        payment_method=PAYMENT_METHODS[args.method] if args.method else donation_pb2.PAYMENT_METHOD_UNSPECIFIED)
    return client.call(client.donations.RecordDonation,
                       donation_api.RecordDonationRequest(donation=donation, request_id=args.request_id or ""))


def donations_list(client: Client, args: argparse.Namespace) -> Message:
    return client.call(client.donations.ListDonations, donation_api.ListDonationsRequest(
        donor_id=args.donor or "", page_size=args.page_size, page_token=args.page_token or ""))


# -- the command line ------------------------------------------------------------------------


def _donor_flags(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    parser.add_argument("--first-name", required=creating)
    parser.add_argument("--last-name", required=creating)
    parser.add_argument("--email")
    parser.add_argument("--phone", help="any common format; stored as E.164")
    parser.add_argument("--type", choices=sorted(DONOR_TYPES))
    parser.add_argument("--spouse-first-name")
    parser.add_argument("--spouse-last-name")
    parser.add_argument("--spouse-email")
    parser.add_argument("--street")
    parser.add_argument("--city")
    parser.add_argument("--state")
    parser.add_argument("--postal-code")
    parser.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. US")
    if creating:  # afterwards the stage moves only along the journey: `donors move-stage`
        parser.add_argument("--stage", help="a journey stage id, e.g. prospect")
    parser.add_argument("--external-id")
    parser.add_argument("--notes")
    parser.add_argument("--tag", dest="tags", action="append", metavar="TAG",
                        help="repeatable" + ("" if creating else "; replaces every tag, --tag '' clears them"))


def _paging_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=int, default=0, help="0 means 50; at most 1000")
    parser.add_argument("--page-token", help="next_page_token of the previous page")


def mail_list(args: argparse.Namespace) -> int:
    """The development mail catcher's messages (and SMS/WhatsApp the development provider wrote)."""
    from services.comms.providers.catcher import list_mail

    folder = Path(args.mail_dir)
    for m in list_mail(folder):
        when = dt.datetime.fromtimestamp(m["received"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{m['id']}  {when}  {m['to']:<32}  {m['subject']}")
    for path in sorted((folder / "sms").glob("*.json")) if (folder / "sms").exists() else []:
        sms = json.loads(path.read_text())
        when = dt.datetime.fromtimestamp(sms["received"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{sms['id']}  {when}  {sms['to']:<32}  [{sms['channel']}] {sms['text']}")
    return 0


def mail_show(args: argparse.Namespace) -> int:
    """One caught message: headers and the text part (--raw: as it arrived, MIME and all)."""
    from services.comms.providers.catcher import raw_mail, read_mail

    folder = Path(args.mail_dir)
    if args.raw:
        raw = raw_mail(folder, args.id)
        if raw is None:
            print(f"givance: no caught mail {args.id!r} (givance mail list shows them)", file=sys.stderr)
            return 1
        sys.stdout.write(raw.decode(errors="replace"))
        return 0
    msg = read_mail(folder, args.id)
    if msg is None:
        print(f"givance: no caught mail {args.id!r} (givance mail list shows them)", file=sys.stderr)
        return 1
    for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        if msg[name]:
            print(f"{name}: {msg[name]}")
    body = msg.get_body(("plain", "html"))
    print()
    print(body.get_content().replace("\r\n", "\n") if body is not None else "")  # as the terminal's lines
    attachments = [a.get_filename() for a in msg.iter_attachments()]
    if attachments:
        print("Attachments: " + ", ".join(str(a) for a in attachments))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="givance", description="Command-line client for the Givance services.")
    parser.add_argument("--identity", default=os.environ.get("GIVANCE_IDENTITY", DEFAULT_IDENTITY),
                        help="identity address (env GIVANCE_IDENTITY, default %(default)s)")
    parser.add_argument("--crm", default=os.environ.get("GIVANCE_CRM", DEFAULT_CRM),
                        help="crm address (env GIVANCE_CRM, default %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("signup", help="create a user and an organization, and sign in")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--org", required=True, help="the organization's name")
    p.add_argument("--first-name")
    p.add_argument("--last-name")
    p.set_defaults(run=signup)

    p = commands.add_parser("login", help="sign in")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--org", help="organization id (default: the user's default organization)")
    p.set_defaults(run=login)

    commands.add_parser("refresh", help="exchange the refresh token for new tokens").set_defaults(run=refresh)
    commands.add_parser("org", help="show the signed-in organization").set_defaults(run=organization)

    donors = commands.add_parser(
        "donors", help="create, get, list, update, move-stage, delete, import and export donors")
    actions = donors.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("create", help="create a donor")
    _donor_flags(p, creating=True)
    p.add_argument("--request-id", help="idempotency key: a retry with it returns the first donor")
    p.set_defaults(run=donors_create)
    p = actions.add_parser("get", help="get a donor, with giving totals")
    p.add_argument("id")
    p.set_defaults(run=donors_get)
    p = actions.add_parser("list", help="list donors")
    p.add_argument("--stage")
    p.add_argument("--tag")
    p.add_argument("--email")
    p.add_argument("--order-by", help='"create_time desc" (default), "create_time", "last_name", "last_name desc"')
    _paging_flags(p)
    p.set_defaults(run=donors_list)
    p = actions.add_parser("update", help="change the given fields of a donor")
    p.add_argument("id")
    _donor_flags(p, creating=False)
    p.add_argument("--etag", help="refuse the update (ABORTED) if the donor changed since this etag")
    p.set_defaults(run=donors_update)
    p = actions.add_parser("move-stage", help="move a donor along the journey to another stage")
    p.add_argument("id")
    p.add_argument("--stage", required=True, help="the stage id to move to, e.g. first_contact")
    p.add_argument("--reason", required=True, help="why the donor moved (kept in the stage history)")
    p.add_argument("--etag", help="refuse the move (ABORTED) if the donor changed since this etag")
    p.set_defaults(run=donors_move_stage)
    p = actions.add_parser("delete", help="soft-delete a donor")
    p.add_argument("id")
    p.add_argument("--etag")
    p.set_defaults(run=donors_delete)
    p = actions.add_parser("import", help="import donors from a CSV file (upsert by external_id)")
    p.add_argument("file", help="CSV with a header row: external_id, first_name, last_name, email, ...")
    p.set_defaults(run=donors_import)
    p = actions.add_parser("export", help="write every donor to stdout as CSV (imports again)")
    p.add_argument("--stage")
    p.add_argument("--tag")
    p.set_defaults(run=donors_export)

    donations = commands.add_parser("donations", help="record and list donations")
    actions = donations.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("record", help="record a donation")
    p.add_argument("--donor", required=True, help="donor id")
    p.add_argument("--amount", required=True, type=amount, help="e.g. 25.00")
    p.add_argument("--currency", default="USD")
    p.add_argument("--date", type=iso_date, help="YYYY-MM-DD (default: today)")
    p.add_argument("--method", choices=list(PAYMENT_METHODS))
    p.add_argument("--project", help="project (campaign) id")
    p.add_argument("--request-id", help="idempotency key: a retry with it records nothing new")
    p.set_defaults(run=donations_record)
    p = actions.add_parser("list", help="list donations, newest first")
    p.add_argument("--donor", help="only this donor's donations")
    _paging_flags(p)
    p.set_defaults(run=donations_list)

    mail = commands.add_parser("mail", help="read the development mail catcher (make run's, on 127.0.0.1:1025)")
    mail.add_argument("--mail-dir", default=os.environ.get("COMMS_MAIL_DIR", "var/mail"),
                      help="where the catcher keeps mail (COMMS_MAIL_DIR; default var/mail)")
    actions = mail.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every caught message, oldest first").set_defaults(offline=mail_list)
    p = actions.add_parser("show", help="one caught message: headers and text")
    p.add_argument("id", help="its id (or a unique prefix) from `givance mail list`")
    p.add_argument("--raw", action="store_true", help="the message as it arrived (MIME, DKIM signature)")
    p.set_defaults(offline=mail_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "offline", None) is not None:  # reads local files: no session, no server
        try:
            return args.offline(args)
        except BrokenPipeError:  # `givance mail list | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
            return 0
    try:
        client = Client(args.identity, args.crm, session_path(), args.timeout)
    except CliError as err:
        print(f"givance: {err}", file=sys.stderr)
        return 1
    try:
        response = args.run(client, args)
    except grpc.RpcError as err:
        report(err)
        return 1
    except CliError as err:
        print(f"givance: {err}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if response is not None:
        # Every field, defaults too: an empty list prints {"donors": []}, not {}.
        print(MessageToJson(response, preserving_proto_field_name=True, indent=2,
                            always_print_fields_with_no_presence=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
