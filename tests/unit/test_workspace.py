"""The workspace's memo of derived values (a pass's prepared parameters).

Each source (by identity) is prepared once while it is in use, one run's parameters or
several runs' in lockstep (asked in turn, chunk after chunk); the memo never holds more
than the sources in use and as many stale ones, so a long fit does not pile up a prepared
copy of every pass's parameters.
"""

from __future__ import annotations

import threading

import pytest
import torch

from bigem._core.workspace import Workspace

CPU = torch.device("cpu")


class Source:
    """A stand-in for immutable parameters: compared by identity."""


def _asking(ws: Workspace, made: list):
    def ask(source, device=CPU):
        return ws.derived("prepared", source, device, lambda: made.append(source) or ("prepared", source))
    return ask


def _held(ws: Workspace) -> int:
    return len(ws._local.memo["prepared"]["entries"])


def test_one_source_is_made_once_and_a_new_one_replaces_it_within_a_pass():
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    first, second, third = Source(), Source(), Source()
    for source in (first, second, third):
        for _ in range(50):  # 50 chunks of a pass
            assert ask(source) == ("prepared", source)
    assert made == [first, second, third]
    assert _held(ws) <= 2  # the one in use and the previous pass's


@pytest.mark.parametrize("runs", [1, 3, 12])
def test_restarts_in_lockstep_are_each_made_once_a_pass(runs):
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    for _ in range(4):  # passes
        params = [Source() for _ in range(runs)]
        for _ in range(30):  # chunks, each read by every run in turn
            for p in params:
                assert ask(p)[1] is p
        assert made[-runs:] == params
        assert _held(ws) <= 2 * runs
    assert len(made) == 4 * runs


def test_a_source_is_made_again_for_another_device_and_names_do_not_share():
    ws, made = Workspace(), []
    source = Source()
    ws.derived("a", source, CPU, lambda: made.append("a") or 1)
    ws.derived("b", source, CPU, lambda: made.append("b") or 2)
    assert ws.derived("a", source, CPU, lambda: 3) == 1
    assert ws.derived("a", source, torch.device("meta"), lambda: made.append("meta") or 4) == 4
    assert made == ["a", "b", "meta"]


def test_each_thread_has_its_own_memo():
    ws, made = Workspace(), []
    source = Source()
    ws.derived("a", source, CPU, lambda: made.append("main") or 1)
    thread = threading.Thread(target=lambda: ws.derived("a", source, CPU, lambda: made.append("other") or 2))
    thread.start()
    thread.join()
    assert made == ["main", "other"]
