"""The embedded broker in a process of its own, started and watched by the controller.

amqtt is pure Python. Inside the controller's process it shared the event loop and the
interpreter lock with everything the controller does: at 1,000 nodes an alert's fan-out and
the nodes' 2,000 confirmations kept the loop busy, and the alert view showed the last
confirmation 3.1–3.5 s after the node sent it (0.4–0.7 s with Mosquitto). In its own process
the broker has a processor core of its own, and the controller's loop only reads what the
broker hands it.

The child is `python -m controller.mqtt.broker_process`; it reads the same password and ACL
files (re-read when they change) and prints `ready` once it listens. It ends when its standard
input closes, so it never outlives the controller, however the controller ends. It ignores
Ctrl-C (it runs in a session of its own, so the terminal's Ctrl-C reaches only the controller)
and waits on a SIGTERM (a service manager signals every process of the service at once) for the
pipe: the controller stops first, telling the nodes it is going while the broker is still
there, then closes the pipe. A broker that dies is started again by the controller's
supervisor; the nodes and the gateway reconnect by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
import time
from pathlib import Path

from controller.core.logs import setup_logging, use_json_logs
from protocol.heap import limit_arenas

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # importing amqtt and listening: 0.3 s here
STOP_TIMEOUT_S = 8.0  # amqtt's own shutdown is bounded at 5 s (EmbeddedBroker.stop)
# A SIGTERM waits this long for the controller to close the pipe first (its own stop: the HTTP
# grace of 5 s, telling the nodes, the relays and the gateway, is well within it).
TERM_GRACE_S = 60.0
# A controller started again at once (after a crash) may find its predecessor's broker still
# closing its listener: the port is waited for this long before it counts as taken.
BIND_WAIT_S = 10.0
READY = b"ready\n"


class BrokerFailed(RuntimeError):
    """The broker process did not start, or ended while it was wanted."""


class BrokerProcess:
    """The controller's side: start the child, keep it running, stop it."""

    def __init__(
        self,
        host: str,
        port: int,
        password_file: Path,
        acl_file: Path,
        *,
        log_level: int | None = None,
        json_logs_as: str | None = None,
        bind_wait_s: float = BIND_WAIT_S,
    ) -> None:
        self.host, self.port = host, port
        self.password_file, self.acl_file = password_file, acl_file
        self.log_level = log_level if log_level is not None else logging.getLogger().level
        self.json_logs_as = json_logs_as  # the instance name its JSON log lines carry
        self.bind_wait_s = bind_wait_s
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.starts = 0  # times it has come up listening
        self.started = asyncio.Condition()  # notified each time it does

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", __name__, "--host", self.host, "--port", str(self.port)]
        cmd += ["--password-file", str(self.password_file), "--acl-file", str(self.acl_file)]
        cmd += ["--log-level", logging.getLevelName(self.log_level or logging.INFO)]
        cmd += ["--bind-wait", str(self.bind_wait_s)]
        if self.json_logs_as is not None:
            cmd += ["--json-logs-as", self.json_logs_as]
        return cmd

    async def start(self) -> None:
        """Start the broker and return once it listens; BrokerFailed if it cannot."""
        self._stopping = False
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Its log lines go where the controller's go.
            stderr=None,
            # Out of the terminal's process group: Ctrl-C stops the controller, which then
            # stops the broker, not both at once.
            start_new_session=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line != READY:
            await self._end(proc)
            raise BrokerFailed(
                f"the embedded broker did not start on {self.host}:{self.port} "
                f"(exit code {proc.returncode}); its reason is in the log above"
            )
        log.info("embedded broker listening on %s:%d (process %d)", self.host, self.port, proc.pid)
        async with self.started:
            self.starts += 1
            self.started.notify_all()

    async def keep(self) -> None:
        """Run under the supervisor: start the broker when it is not running, then wait; a
        broker that ends by itself is an error (the supervisor logs it, counts it and calls
        again, which starts a new one)."""
        proc = self._proc
        if proc is None:
            await self.start()
            proc = self._proc
            assert proc is not None
        code = await proc.wait()
        if not self._stopping:
            self._proc = None  # the next call starts another
            raise BrokerFailed(f"the embedded broker (process {proc.pid}) ended with code {code}")
        await asyncio.get_running_loop().create_future()  # stopping: nothing to do until cancelled

    def stopping(self) -> None:
        """The controller is stopping: the broker ending from now on is expected."""
        self._stopping = True

    async def stop(self) -> None:
        """Close its pipe (it stops and exits), and kill it if it has not after a while."""
        self.stopping()
        if self._proc is not None:
            await self._end(self._proc)

    @staticmethod
    async def _end(proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("embedded broker (process %d) did not stop: killing it", proc.pid)
            proc.kill()
            await proc.wait()


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener will
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_free(host: str, port: int, wait_s: float = BIND_WAIT_S) -> bool:
    """Whether the broker's port can be listened on, waiting up to `wait_s` for a predecessor
    to let it go. `radio serve` asks before it starts, to refuse in one line; the broker's
    process asks before it listens (nothing else runs in it yet, so it may block)."""
    if not _port_in_use(host, port):
        return True
    log.warning("port %s:%d is in use; waiting up to %.0f s for it", host, port, wait_s)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.2)  # a predecessor letting go: no event to wait on across processes
        if not _port_in_use(host, port):
            return True
    return False


async def _serve(args: argparse.Namespace) -> int:
    from controller.mqtt.embedded_broker import EmbeddedBroker

    loop = asyncio.get_running_loop()
    parent_gone = asyncio.Event()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_pipe() -> None:
        while await reader.read(4096):
            pass
        parent_gone.set()

    terminated = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, terminated.set)
    if not port_free(args.host, args.port, args.bind_wait):
        log.error(
            "embedded broker cannot listen on %s:%d: the port is in use", args.host, args.port
        )
        return 1
    broker = EmbeddedBroker(args.host, args.port, Path(args.password_file), Path(args.acl_file))
    try:
        await broker.start()
    except Exception as exc:
        log.error("embedded broker cannot listen on %s:%d: %s", args.host, args.port, exc)
        await broker.stop()
        return 1
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    watcher = asyncio.create_task(watch_pipe())
    ended = asyncio.create_task(parent_gone.wait())
    term = asyncio.create_task(terminated.wait())
    await asyncio.wait({ended, term}, return_when=asyncio.FIRST_COMPLETED)
    if not parent_gone.is_set():
        # SIGTERM (a service manager stopping every process of the service at once): the
        # controller first tells the nodes it is going, then closes the pipe; wait for that.
        try:
            await asyncio.wait_for(parent_gone.wait(), TERM_GRACE_S)
        except TimeoutError:
            pass
    for task in (watcher, ended, term):
        task.cancel()
    await broker.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--acl-file", required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--bind-wait", type=float, default=BIND_WAIT_S)
    parser.add_argument("--json-logs-as", help="JSON log lines, naming this instance")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller decides when it ends
    setup_logging(args.log_level)  # as `radio serve` logs
    if args.json_logs_as is not None:
        use_json_logs(args.json_logs_as)
    limit_arenas()
    sys.exit(asyncio.run(_serve(args)))


if __name__ == "__main__":
    main()
