"""IB's real error/notice codes and texts used by the gateway and its fault injection."""

from __future__ import annotations

NOTICE_TEXTS: dict[int, str] = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2107: "HMDS data farm connection is inactive but should be available upon demand.ushmds",
    2108: "Market data farm connection is inactive but should be available upon demand.usfarm",
    2158: "Sec-def data farm connection is OK:secdefnj",
}

ERROR_TEXTS: dict[int, str] = {
    100: "Max rate of messages per second has been exceeded:max=50 rec={rec} (001)",
    101: "Max number of tickers has been reached",
    200: "No security definition has been found for the request",
    320: "Error reading request. {detail}",
    321: "Error validating request.-'{detail}' : cause - {cause}",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    354: "Requested market data is not subscribed.",
}

#: Notices a real gateway sends right after startApi (warnings for ib_insync: 21xx).
CONNECT_NOTICES = (2104, 2106, 2158)


def text_for(code: int) -> str:
    """IB's text for a notice/error code ("" if the simulator has none)."""
    return NOTICE_TEXTS.get(code) or ERROR_TEXTS.get(code, "")
