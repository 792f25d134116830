"""The sliced-poll kernel client that headless notebook runs use (iislib.kernel_client)."""

import asyncio
from queue import Empty

import pytest
from jupyter_client.channels import AsyncZMQSocketChannel

from iislib import kernel_client as kc


@pytest.fixture
def polls(monkeypatch):
    """Replace the socket poll: Empty for the first ``polls.empty`` calls, then a message."""
    calls = []

    async def fake_get_msg(self, timeout=None):
        calls.append(timeout)
        if len(calls) <= fake_get_msg.empty:
            await asyncio.sleep(0)
            raise Empty
        return {"msg": len(calls)}

    fake_get_msg.empty = 0
    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", fake_get_msg)
    monkeypatch.setattr(kc, "POLL_SLICE", 0.01)
    return calls, fake_get_msg


def _get(timeout):
    channel = kc.SlicedPollChannel.__new__(kc.SlicedPollChannel)  # no socket: poll is faked
    return asyncio.run(channel.get_msg(timeout=timeout))


def test_a_wait_without_timeout_keeps_polling_in_slices(polls):
    calls, fake = polls
    fake.empty = 5  # the wake-up was missed five times
    assert _get(None) == {"msg": 6}
    assert calls == [0.01] * 6  # never one endless poll


def test_a_timeout_still_raises_after_its_deadline(polls, monkeypatch):
    calls, fake = polls
    fake.empty = 10**9
    clock = iter(range(100))  # each monotonic() call is one second later
    monkeypatch.setattr(kc, "monotonic", lambda: float(next(clock)))
    with pytest.raises(Empty):
        _get(3.0)  # deadline 3: a slice at t=1 (2 s left), the last at t=3 (0 s), Empty at t=4
    assert calls == [0.01, 0.0]


def test_the_manager_builds_sliced_poll_clients():
    client = kc.SlicedPollKernelManager().client()
    assert isinstance(client, kc.SlicedPollKernelClient)
    assert client.shell_channel_class is kc.SlicedPollChannel
    assert client.iopub_channel_class is kc.SlicedPollChannel
