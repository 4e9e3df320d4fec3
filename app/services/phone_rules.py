"""Phone number rules. Google's libphonenumber (the `phonenumbers` package) decides every one of them.

From loosest to strictest:
- a number someone wrote (a contact's phone, a CSV cell, a phone custom field, a caller's `From`): any *possible*
  number, stored in E.164 so an incoming call finds its contact card. Fictional 555-01xx numbers are possible
  (right length) but not valid (no such area code), and the demo data and tests use them.
- a number the platform answers (assigned by a super admin): a possible number too; with Twilio configured it must
  also be in the platform's Twilio account (`app.services.calls.phone_numbers`).
- a transfer number, which the platform's Twilio account dials: a valid number of a dialable type in an allowed
  country (TRANSFER_ALLOWED_COUNTRIES), never premium-rate, shared-cost or a short code.

Numbers written without a country code are North American, as the product has always read them.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult, shortnumberinfo

DEFAULT_REGION = "US"

# The CSV importer normalises a million numbers per import and the library takes ~20 µs a number (18 s a
# million), so the most common shape, a North American number with an area code that does not start with 0 or 1,
# is read here (0.6 s a million): for exactly these strings the library gives "+1" and the ten digits
# (tests/test_phone_rules.py checks it against the library with generated inputs and on every area code).
# Everything else goes to the library.
_NANP_SHAPE = re.compile(r"(?:\+?1[ .-]?)?(?:\(([2-9][0-9]{2})\)|([2-9][0-9]{2}))[ .-]?([0-9]{3})[ .-]?([0-9]{4})")

# What a call may be transferred to. Premium-rate and shared-cost cost the dialling account (toll fraud), and
# personal numbers, pagers, UANs, voicemail and unknown ranges are no place to send a caller.
_TRANSFER_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.VOIP,
    }
)
_TYPE_NAMES = {
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a universal access number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


def _nanp_shortcut(text: str) -> str | None:
    match = _NANP_SHAPE.fullmatch(text)
    return f"+1{match[1] or match[2]}{match[3]}{match[4]}" if match else None


def _parse(text: str) -> tuple[phonenumbers.PhoneNumber | None, int | None]:
    """(number, None), or (None, the library's NumberParseException error type)."""
    if text.startswith("00"):
        text = (
            "+" + text[2:]
        )  # the international prefix most of the world dials (North America's 011 the library knows)
    try:
        return phonenumbers.parse(text, DEFAULT_REGION), None
    except NumberParseException as exc:
        return None, exc.error_type


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _possible(number: phonenumbers.PhoneNumber) -> bool:
    # Not phonenumbers.is_possible_number: it also takes local-only numbers (seven digits, no area code), which
    # cannot be dialled from elsewhere or matched to a caller's number.
    return phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE


def display_phone(value: str | None, region: str = DEFAULT_REGION) -> str:
    """A stored number as people read it: the region's own numbers in its national format ("(415) 555-0123"),
    others in international format ("+44 20 7946 0958"); what cannot be read, as it was."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException:
        return value
    if not phonenumbers.is_possible_number(number):
        return value
    own = number.country_code == phonenumbers.country_code_for_region(region)
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL if own else PhoneNumberFormat.INTERNATIONAL)


def library_normalise(text: str) -> str | None:
    """`normalise_phone` without the shortcut: the library's E.164 of a possible number."""
    number, _ = _parse(text)
    return _e164(number) if number is not None and _possible(number) else None


def normalise_phone(value: str | None) -> str | None:
    """The number in E.164 when it is a possible phone number, else None. Extensions are dropped.

    The CRM stores it beside what the user typed; an incoming call's `From` finds its contact by it, and the
    contact search document indexes its digits (models.crm.SEARCH_DOCUMENT)."""
    text = (value or "").strip()
    if not text:
        return None
    return _nanp_shortcut(text) or library_normalise(text)


def phone_problem(value: str, example: str = "") -> str:
    """What is wrong with a number `normalise_phone` refused, in the user's words (`example`: how to write one)."""
    shown = f"“{value.strip()[:40]}”"
    number, error = _parse(value.strip())
    if number is None:
        if error == NumberParseException.INVALID_COUNTRY_CODE:
            return f"{shown} does not start with a country code in use. Write it like +44 20 7946 0958."
        if error == NumberParseException.TOO_LONG:
            return f"{shown} is too long to be a phone number."
        if error in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
            return f"{shown} is too short to be a phone number."
        return f"{shown} is not a phone number." + (
            f" Write it in international format, like {example}." if example else ""
        )
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return f"{shown} has no area code. Write the whole number, like (415) 555-0100."
    if reason == ValidationResult.TOO_SHORT:
        return f"{shown} is too short to be a phone number."
    if reason == ValidationResult.TOO_LONG:
        return f"{shown} is too long to be a phone number."
    if reason == ValidationResult.INVALID_LENGTH:
        return f"{shown} has the wrong number of digits for a +{number.country_code} number."
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return f"{shown} does not start with a country code in use. Write it like +44 20 7946 0958."
    return f"{shown} is not a phone number."


def required_phone(value: str | None, label: str = "Phone number") -> tuple[str | None, str | None]:
    """(the number in E.164, problem) for a field that must hold a possible number (a number the platform answers)."""
    text = (value or "").strip()
    if not text:
        return None, f"{label} is required."
    normalised = normalise_phone(text)
    return (normalised, None) if normalised else (None, phone_problem(text))


def _region_name(region: str | None) -> str:
    """'Canada' for 'CA': the library names regions through the country of a number, so ask with its example."""
    from phonenumbers import geocoder  # loads its name tables on first use; only refusals need them

    example = phonenumbers.example_number(region) if region else None
    return (geocoder.country_name_for_number(example, "en") if example else "") or region or "no known country"


def transfer_number_problem(value: str | None, allowed_countries: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(the number in E.164, problem) for a number the platform's Twilio account will dial to transfer a caller."""
    text = (value or "").strip()
    shown = f"“{text[:40]}”"
    if not text:
        return None, "Enter a transfer number."
    number, _ = _parse(text)
    if number is None:
        return None, phone_problem(text, example="+1 415 555 0100")
    if not _possible(number) and shortnumberinfo.is_valid_short_number(number):
        return None, (
            f"{shown} is a short code or service number. Calls can only be transferred to a full phone "
            "number, like +1 415 555 0100."
        )
    if not _possible(number):
        return None, phone_problem(text)
    e164 = _e164(number)
    if not phonenumbers.is_valid_number(number):
        return None, f"{e164} is not a number in service anywhere. Check the country code and the area code."
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.PREMIUM_RATE:
        return None, f"{e164} is a premium-rate number. Calls are never transferred to premium-rate numbers."
    if kind == PhoneNumberType.SHARED_COST:
        return None, f"{e164} is a shared-cost number. Calls are never transferred to shared-cost numbers."
    if kind not in _TRANSFER_TYPES:
        what = _TYPE_NAMES.get(kind, "not a landline or mobile number")
        return None, f"{e164} is {what}. Transfer calls to a landline, mobile or toll-free number."
    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_countries:
        places = ", ".join(_region_name(code) for code in allowed_countries) or "no country"
        return None, (
            f"Calls can only be transferred to numbers in {places}. {e164} is a number of another "
            f"country: {_region_name(region)}."
        )
    return e164, None
