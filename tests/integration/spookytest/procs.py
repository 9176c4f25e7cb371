"""Managed child processes with a log file each, log polling, and bounded shutdown."""

import os
import pathlib
import re
import signal
import subprocess
import time

POLL_INTERVAL_S = 0.02


class ProcError(AssertionError):
    """A managed process failed to start, exited early, or a log line did not appear."""


def poll(predicate, timeout, what, interval=POLL_INTERVAL_S):
    """Calls predicate() until it returns a truthy value (returned) or `timeout` seconds pass
    (raises ProcError naming `what`). The number of calls is bounded by timeout/interval + 1."""
    deadline = time.monotonic() + timeout
    max_calls = int(timeout / interval) + 2
    for _ in range(max_calls):
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise ProcError(f"timed out after {timeout:.1f}s waiting for {what}")


class Proc:
    """One child process; stdout and stderr both go to `log_path`.

    Signals are only ever sent to this object's own PID."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = pathlib.Path(log_path)
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.returncode = None
        self.stopped_by_kill = False

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"# {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                          start_new_session=True)
        return self

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    # --- log access -------------------------------------------------------------------------

    def log_text(self):
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def tail(self, n=60):
        return "\n".join(self.log_lines()[-n:])

    def log_matches(self, regex):
        """All matches of `regex` (str or compiled) over the log's lines."""
        rx = re.compile(regex)
        return [m for m in map(rx.search, self.log_lines()) if m]

    def count_log(self, regex):
        return len(self.log_matches(regex))

    def wait_for_log(self, regex, timeout=10.0, count=1):
        """Polls the log until `regex` matched on `count` lines; returns the last match.
        Fails early, with the log tail, if the process exits first."""
        rx = re.compile(regex)

        def check():
            matches = [m for m in map(rx.search, self.log_lines()) if m]
            if len(matches) >= count:
                return matches[count - 1]
            if not self.running():
                raise ProcError(f"{self.name} exited (rc={self.popen.poll()}) before logging "
                                f"{regex!r}; log tail:\n{self.tail()}")
            return None

        try:
            return poll(check, timeout, f"{self.name} to log {regex!r} x{count}")
        except ProcError as e:
            if "exited" in str(e):
                raise
            raise ProcError(f"{e}; log tail:\n{self.tail()}") from None

    # --- shutdown ---------------------------------------------------------------------------

    def send_signal(self, sig):
        if self.running():
            self.popen.send_signal(sig)

    def wait(self, timeout):
        """Waits up to `timeout` s for exit; returns the exit code or None if still running."""
        try:
            self.returncode = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=5.0, sig=signal.SIGTERM):
        """Sends `sig`, waits up to `timeout` s, then SIGKILLs. Returns the exit code
        (negative for death by signal, as in subprocess). Idempotent."""
        if self.popen is None:
            return None
        if self.popen.poll() is not None:
            self.returncode = self.popen.returncode
            return self.returncode
        self.popen.send_signal(sig)
        if self.wait(timeout) is None:
            self.stopped_by_kill = True
            self.popen.kill()
            self.wait(10)
        return self.returncode


class ProcGroup:
    """The processes of one test. Stops them in reverse start order; keeps them listed so the
    failure hook can print their logs."""

    def __init__(self, log_dir):
        self.log_dir = pathlib.Path(log_dir)
        self.procs = []
        self.client_logs = []     # [(name, path)] of short-lived client runs, for failure output
        self._names = {}

    def note_log(self, name, path):
        self.client_logs.append((name, pathlib.Path(path)))

    def log_path_for(self, name):
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        suffix = f"-{n}" if n else ""
        return self.log_dir / f"{name}{suffix}.log"

    def start(self, name, argv, env=None, cwd=None):
        proc = Proc(name, argv, self.log_path_for(name), env=env, cwd=cwd)
        self.procs.append(proc)
        proc.start()
        return proc

    def stop_all(self, timeout=5.0):
        errors = []
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout)
            except Exception as e:  # keep stopping the others
                errors.append(f"{proc.name}: {e!r}")
        return errors


def default_env(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
