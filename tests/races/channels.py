"""Races of configure_channel: twenty first configurations of one channel at once make one channel row (the
workspace lock orders them); every call succeeds and the last one's settings stand, whole."""

from __future__ import annotations

from sqlmodel import col

from favmcp.domains.messaging.models import ChannelConfig
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, ok, oks, rows


async def setup_nothing(s: Stage) -> None:
    pass


def sms(i: int) -> dict[str, str]:
    return {
        "channel": "sms",
        "account_sid": f"AC{i:032x}",
        "auth_token": f"token-{i:02d}-0123456789",
        "from_number": f"+1555000{i:04d}",
    }


async def check_one_channel(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N, "each configuration succeeds in its turn"
    assert len({o.result.data["id"] for o in outs}) == 1, "one channel row"
    [row] = await rows(s, ChannelConfig, col(ChannelConfig.workspace_id) == s.owner.workspace_id)
    senders = {o.call.args["from_number"]: o.call.args["account_sid"] for o in outs}
    assert senders[row.sender] == row.settings["account_sid"], "the settings of one call, not a mix"
    status = await ok(s, "get_channel_status", {})
    [sms_status] = [c for c in status["channels"] if c["channel"] == "sms"]
    assert sms_status["configured"] and sms_status["sender"] == row.sender


SCENARIOS: dict[str, Scenario] = {
    "configure_channel: twenty first configurations, one channel": Scenario(
        "configure_channel",
        setup_nothing,
        lambda s, i: as_owner(s, "configure_channel", sms(i)),
        check_one_channel,
    ),
}
