"""Receipt PDFs (fpdf2)."""

from __future__ import annotations

from fpdf import FPDF


def _latin1(text: str) -> str:
    """The core fonts speak Latin-1; anything else is replaced rather than failing the receipt."""
    return text.encode("latin-1", "replace").decode("latin-1")


def receipt_pdf(organization: str, donor_name: str, year: int, totals: list) -> bytes:
    """A one-page (or longer) yearly giving receipt: per currency, every gift and the total."""
    pdf = FPDF()
    pdf.set_title(_latin1(f"{organization} - giving receipt {year}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"{organization}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 8, _latin1(f"Giving receipt for {year}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, _latin1(f"Donor: {donor_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for t in totals:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(f"{t.currency}: {t.total} in {t.gift_count} gift(s)"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for _donation_id, day, amount, reference in t.gifts:
            pdf.cell(0, 6, _latin1(f"{day}   {amount} {t.currency}   {reference}"), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, "No goods or services were provided in exchange for these contributions.")
    return bytes(pdf.output())
