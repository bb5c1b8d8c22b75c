"""LoopbackSession (the echo-test diagnostics mode): every caller frame back, in order, unchanged."""

from __future__ import annotations

import numpy as np

from iasovoice.core import events as ev
from iasovoice.core.loopback import LoopbackSession
from iasovoice.core.session import Phase, SessionSettings


def _frame(value: int) -> np.ndarray:
    return np.full(160, value, dtype=np.int16)


def test_echoes_each_frame_in_order_and_unchanged() -> None:
    session = LoopbackSession(SessionSettings(call_id="echo-1"))
    assert session.handle(ev.CallStarted(0.0)) == []  # no greeting on an echo test
    out = [session.handle(ev.AudioReceived(i, _frame(i), 0.02 * i)) for i in range(5)]
    assert all(len(actions) == 1 and isinstance(actions[0], ev.SendAudio) for actions in out)
    echoed = [actions[0].frames[0] for actions in out]
    assert [int(f[0]) for f in echoed] == [0, 1, 2, 3, 4]
    assert all(np.array_equal(f, _frame(i)) for i, f in enumerate(echoed))
    assert session.handle(ev.Tick(1.0)) == []
    assert session.jitter_stats.frames_echoed == 5


def test_nothing_before_start_and_clean_end_on_hangup() -> None:
    session = LoopbackSession(SessionSettings(call_id="echo-2"))
    assert session.handle(ev.AudioReceived(0, _frame(1), 0.0)) == []
    session.handle(ev.CallStarted(0.0))
    assert session.handle(ev.HangupRequested("caller_hangup", 1.0)) == [ev.EndCall("completed")]
    assert session.phase == Phase.ENDED
    assert session.handle(ev.HangupRequested("caller_hangup", 2.0)) == []  # a second hang-up is a no-op
    assert session.handle(ev.AudioReceived(1, _frame(1), 2.0)) == []
    assert session.transcript == []
