"""Asyncio helpers shared by the controller and the node software, both of which await aiomqtt:
cancellation that survives Python 3.11 asyncio.wait_for swallowing a cancel request, and a
quiet word for a closed socket's race."""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import weakref
from collections.abc import Iterable
from typing import Any, TypeVar

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS

log = logging.getLogger(__name__)

T = TypeVar("T")


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that an awaited library call swallowed.

    On Python 3.11 asyncio.wait_for (used inside aiomqtt) can drop a cancel that arrives as
    the awaited operation completes; the task still counts the request, so check it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel tasks and wait until they end, cancelling again any that swallowed it."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)


def quiet_closed_socket_races(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Log, as one debug line, the race by which a closing MQTT connection asks the loop to
    watch a socket that is already gone.

    paho-mqtt (under aiomqtt) asks the loop, from its own callbacks, to watch its socket for
    writing. When the connection has just closed (the broker went away, or the process is
    stopping) that request can come after the socket is closed, and asyncio reports the
    OSError (EBADF) with a traceback as an error of the loop. Nothing is lost: the client has
    already seen the disconnect and reconnects or ends. Every other error of the loop still
    goes to the handler that was there before.

    A variant (ENOENT): the old socket's number already names the new connection's socket
    when the loop, which still holds the old registration, is asked to watch it; epoll refuses
    and the loop drops the registration. The request is then made again, so the new
    connection is watched (without it the connection would stall until its keepalive).
    """
    loop = loop or asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message", ""))
        watching = "add_writer" in message or "add_reader" in message
        if isinstance(exc, OSError) and exc.errno == errno.EBADF and watching:
            log.debug("a socket closed before the loop could watch it: %s", message[:200])
            return
        handle = context.get("handle")
        request = getattr(handle, "_callback", None)
        args = getattr(handle, "_args", None)
        if (
            isinstance(exc, OSError)
            and exc.errno == errno.ENOENT
            and request in (loop.add_reader, loop.add_writer)
            and args
        ):
            log.info("a socket number was reused before the loop forgot it: watching it anew")
            loop.call_soon(request, *args)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class LoopClient(aiomqtt.Client):
    """aiomqtt's client, but what paho queues on the loop is written by one callback for all.

    paho asks for its socket to be watched for writing before each packet it sends (every
    acknowledgement among them), and aiomqtt always goes through `call_soon_threadsafe`,
    because paho's connect runs in a worker thread: a wake-up through the loop's self-pipe (a
    system call) and a turn of the loop for each packet. Asked from the loop itself, the
    packets queued meanwhile are written by one `call_soon` for every client of the loop, at
    the next turn; only a socket that did not take them whole is watched for the rest (what
    paho's connecting thread queues still goes aiomqtt's way). Watching costs two
    system calls (`epoll_ctl` on and off): a fifth of an emulator process's time in a
    10,000-node alert, the acknowledgements of what it received (`bench_scale.py --profile`)."""

    _end_marked_for: asyncio.Future[None] | None = None  # see `messages`

    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        try:
            here = asyncio.get_running_loop() is getattr(self, "_loop", None)
        except RuntimeError:
            here = False
        # aiomqtt's own way, from paho's connecting thread, or if a release renames what this
        # relies on (tests/protocol/test_loop_client.py would then fail).
        if not here or not isinstance(getattr(self, "_disconnected", None), asyncio.Future):
            super()._on_socket_register_write(client, userdata, sock)
            return
        _writes().want(self, client, sock)

    def _watch(self, client: Any, sock: Any) -> None:
        """Watch the socket until paho has written what it holds (it then unregisters)."""
        try:
            self._loop.add_writer(sock.fileno(), self._write_ready, client)
        except (OSError, ValueError):
            # The loop still watches a closed socket whose number this one now has: aiomqtt's
            # way again, whose failure the loop's handler (quiet_closed_socket_races) mends.
            super()._on_socket_register_write(client, None, sock)

    @property
    def messages(self) -> Any:  # aiomqtt.client.MessagesIterator, or one of the same use
        """The messages as they arrive, without aiomqtt's task and `asyncio.wait` for each.

        aiomqtt waits for each message with a new task reading its queue and an
        `asyncio.wait` on that task and on the disconnect: at 5,000 nodes a process, a fifth
        of an alert's time in the emulator (a py-spy profile of `bench_scale.py --profile`).
        Here the wait is the queue's own, and the disconnect puts an end-mark behind the
        messages already queued, which still come first, as with aiomqtt's."""
        # A plain FIFO queue only: a priority or LIFO queue (aiomqtt's `queue_type`) would not
        # keep the end-mark behind the messages.
        if type(getattr(self, "_queue", None)) is not asyncio.Queue or not isinstance(
            getattr(self, "_disconnected", None), asyncio.Future
        ):
            return super().messages  # a release that renamed them: aiomqtt's own way
        return _Messages(self)

    async def publish(
        self,
        /,
        topic: str,
        payload: Any = None,
        qos: int = 0,
        retain: bool = False,
        properties: Any = None,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """aiomqtt's publish, but the wait for a QoS 1 or 2 acknowledgement is the event's own,
        bounded by `asyncio.timeout`, not an `asyncio.wait_for`, which makes a task of each
        wait: at 5,000 nodes a process, a tenth of the emulator's time in an alert went to
        those tasks (their confirmations; `bench_alert.py --profile`). The wait is entered in
        aiomqtt's table of pending publishes directly: its context manager, which walks every
        pending call through a generator, was another tenth of an emulator's samples (and
        aiomqtt's warning over `pending_calls_threshold` calls waiting is not given)."""
        pending = getattr(self, "_pending_publishes", None)
        subscribes = getattr(self, "_pending_subscribes", None)
        unsubscribes = getattr(self, "_pending_unsubscribes", None)
        if (
            not isinstance(pending, dict)
            or not isinstance(subscribes, dict)
            or not isinstance(unsubscribes, dict)
            or getattr(self, "_outgoing_calls_sem", None) is not None
        ):
            # A bound on calls at once, or a release that renamed these: aiomqtt's own way.
            await super().publish(
                topic, payload, qos, retain, properties, *args, timeout=timeout, **kwargs
            )
            return
        info = self._client.publish(topic, payload, qos, retain, properties, *args, **kwargs)
        if info.rc != MQTT_ERR_SUCCESS:
            ended = self._disconnected
            cause = ended.exception() if ended.done() and not ended.cancelled() else None
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message") from cause
        if info.is_published():
            return
        mid = info.mid
        if mid in pending or mid in subscribes or mid in unsubscribes:  # as aiomqtt refuses it
            raise RuntimeError(f'There already exists a pending call for message ID "{mid}"')
        confirmation = pending[mid] = asyncio.Event()  # set by aiomqtt's `_on_publish`
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(None if limit == math.inf else limit):
                await confirmation.wait()
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            if pending.get(mid) is confirmation:
                del pending[mid]

    async def _misc_loop(self) -> None:
        """paho's housekeeping (keep-alive pings, and their timeouts), once a second as
        aiomqtt does it, but by one task for every client of the event loop, not one each:
        5,000 wake-ups a second in a process of 5,000 emulated nodes, idle or not."""
        await _housekeeping().serve(self._client)

    def _write_ready(self, client: Any) -> None:
        try:
            client.loop_write()
        except Exception as exc:  # a broken connection: aiomqtt's own handling, as its callback
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)


_END = object()  # behind the last message of a connection that has ended


class _Messages:
    """`LoopClient.messages`: iterates like aiomqtt's `MessagesIterator`."""

    def __init__(self, client: LoopClient) -> None:
        self._client = client

    def __aiter__(self) -> _Messages:
        return self

    def __len__(self) -> int:
        """The messages waiting (not counting an end-mark)."""
        return sum(item is not _END for item in self._client._queue._queue)  # type: ignore[attr-defined]

    async def __anext__(self) -> aiomqtt.Message:
        client = self._client
        queue: asyncio.Queue[Any] = client._queue
        ended: asyncio.Future[None] = client._disconnected
        if client._end_marked_for is not ended:  # once per connection
            client._end_marked_for = ended
            ended.add_done_callback(lambda _f: _mark_end(queue))
        while True:
            ended = client._disconnected
            if ended.done() and queue.empty():
                _raise_disconnected(ended)
            item = await queue.get()
            if item is not _END:
                return item  # type: ignore[no-any-return]
            if client._disconnected.done():
                _mark_end(queue)  # for any other reader of this client, as aiomqtt's would
                _raise_disconnected(client._disconnected)
            # The end of an earlier connection of this client, not read then: go on.


def _mark_end(queue: asyncio.Queue[Any]) -> None:
    try:
        queue.put_nowait(_END)
    except asyncio.QueueFull:  # a bounded queue, full: the reader finds `_disconnected` done
        pass


def _raise_disconnected(ended: asyncio.Future[None]) -> None:
    exc = None if ended.cancelled() else ended.exception()
    raise aiomqtt.MqttError("Disconnected during message iteration") from exc


class _Housekeeping:
    """Calls `loop_misc` of each client it serves once a second, from one task; a client is
    served until its `loop_misc` fails (its connection is over), as in aiomqtt's own loop."""

    def __init__(self) -> None:
        self._clients: dict[Any, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def serve(self, client: Any) -> None:
        if client.loop_misc() != MQTT_ERR_SUCCESS:
            return
        over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._clients[client] = over
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick(), name="mqtt-misc")
        try:
            await over
        finally:
            if self._clients.get(client) is over:
                del self._clients[client]

    async def _tick(self) -> None:
        try:
            while self._clients:
                await asyncio.sleep(1)
                for client, over in list(self._clients.items()):
                    if over.done():
                        continue
                    try:
                        ok = client.loop_misc() == MQTT_ERR_SUCCESS
                    except Exception as exc:  # one client's failure is its own
                        over.set_exception(exc)
                        continue
                    if not ok:
                        over.set_result(None)
        finally:
            # The task refers to its loop: kept here, it would keep the loop (the key of
            # `_HOUSEKEEPING`) alive after its end.
            if self._task is asyncio.current_task():
                self._task = None


_HOUSEKEEPING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Housekeeping] = (
    weakref.WeakKeyDictionary()
)


class _Writes:
    """The clients of one loop with packets queued since the last flush, written by one
    `call_soon` for all of them. It refers to them weakly: a loop closed with a flush still
    pending must not be kept alive through its own entry in `_WRITES`."""

    def __init__(self) -> None:
        self._due: list[tuple[weakref.ref[LoopClient], weakref.ref[Any], Any]] = []

    def want(self, owner: LoopClient, client: Any, sock: Any) -> None:
        if not self._due:
            asyncio.get_running_loop().call_soon(self._flush)
        self._due.append((weakref.ref(owner), weakref.ref(client), sock))

    def _flush(self) -> None:
        due, self._due = self._due, []
        for i, (owner_ref, client_ref, sock) in enumerate(due):
            try:
                owner, client = owner_ref(), client_ref()
                if owner is None or client is None:
                    continue
                owner._write_ready(client)
                # Not all written (paho then stays registered and does not ask again): watch.
                if client.want_write() and client.socket() is sock:
                    owner._watch(client, sock)
            except BaseException:
                # Whatever escaped one client, the others' packets are still to go.
                if not self._due:
                    asyncio.get_running_loop().call_soon(self._flush)
                self._due[:0] = due[i + 1 :]
                raise


_WRITES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes] = weakref.WeakKeyDictionary()


def _of_loop(kept: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T], make: type[T]) -> T:
    """The running loop's one `make`, made on first use and forgotten with the loop."""
    loop = asyncio.get_running_loop()
    found = kept.get(loop)
    if found is None:
        found = kept[loop] = make()
    return found


def _writes() -> _Writes:
    return _of_loop(_WRITES, _Writes)


def _housekeeping() -> _Housekeeping:
    return _of_loop(_HOUSEKEEPING, _Housekeeping)
