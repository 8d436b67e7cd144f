"""What the supervisor does with the processes orphaned below it (deploy/orphans.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from deploy.orphans import Proc, sort_out


def test_only_the_orphans_of_a_dead_session_are_killed_and_the_exited_reaped() -> None:
    adopted = [
        Proc(10, "S", 7),  # its session's leader (7) died: a dead job's plakar
        Proc(11, "R", 8),  # its session's leader lives
        Proc(12, "S", 12),  # leads its own session (plakar's cache daemon)
        Proc(13, "Z", 7),  # exited
    ]
    reap, kill = sort_out(adopted, leader_alive=lambda pid: pid == 8)
    assert (reap, kill) == ([13], [10])


# Runs apart: a child subreaper is given every orphan below it for good.
_SUPERVISOR = textwrap.dedent(
    """
    import json, os, subprocess, time
    from deploy import orphans

    orphans.become_subreaper()

    def orphan(command, **options):
        # A shell that starts the command in the background and exits: the pid it left.
        shell = subprocess.Popen(
            ["sh", "-c", command + " >/dev/null & echo $!"], stdout=subprocess.PIPE, **options
        )
        pid = int(shell.stdout.readline())
        shell.wait()
        return pid

    # A wrapper that forks its command rather than exec it, in a session of its own as a
    # runner starts plakar, then dies: its command goes on, now the supervisor's child.
    left = orphan("sleep 60", start_new_session=True)
    # A process that leads its own session (as plakar's cache daemon does), orphaned too.
    own_session = orphan("setsid sleep 60")
    time.sleep(0.2)  # the setsid done
    killed = orphans.tend(own=set())
    time.sleep(0.2)
    orphans.tend(own=set())  # reaps what was killed
    state = lambda pid: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    print(json.dumps({
        "killed": killed, "left": left, "gone": not os.path.exists(f"/proc/{left}"),
        "own_session_state": state(own_session),
    }))
    os.kill(own_session, 9)
    """
)


def test_a_subreaper_kills_what_a_dead_job_left_and_reaps_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SUPERVISOR], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["killed"] == [seen["left"]], seen
    assert seen["gone"], "the killed orphan was not reaped"
    assert seen["own_session_state"] in "RS", seen
