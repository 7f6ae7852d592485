"""A TCP proxy for the PostgreSQL wire protocol that can lose a COMMIT's answer.

Used by test_faults_pg.py to show that a transaction whose COMMIT reached the
server, but whose answer never reached the client, is not run a second time.

    proxy = PgProxy(upstream_port)            # listens on proxy.port
    proxy.arm("INSERT INTO ServerTasks", 1)   # the next 1 transaction that ran
                                              # a statement containing this text:
                                              # forward its COMMIT, then cut
                                              # the client off
    proxy.cuts                                # how many were cut so far
    proxy.stop()

It reads the frontend's messages (after the startup packet: a type byte and
a length), remembers the text of each named statement from Parse messages
(psqlODBC prepares a statement once per connection and then only binds it),
and marks a connection's transaction when a Query, Parse or Bind uses a
statement holding the armed text.  When such a transaction sends COMMIT, the
proxy forwards it, waits until the server has answered, and closes the
client's socket without passing the answer on: the change is committed and
the client sees a dropped connection.
"""

import socket
import struct
import threading


class PgProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.pattern = None
        self.remaining = 0
        self.cuts = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def arm(self, pattern: str, count: int = 1) -> None:
        with self.lock:
            self.pattern = pattern.encode()
            self.remaining = count

    def stop(self) -> None:
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            for s in c:
                try:
                    s.close()
                except OSError:
                    pass

    # ------------------------------------------------------------------

    def _accept(self):
        while self.running:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            self.conns.append((client, server))
            state = {"marked": False, "statements": {}, "cut": False,
                     "commit_sent": threading.Event()}
            threading.Thread(target=self._frontend, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._backend, args=(client, server, state), daemon=True).start()

    @staticmethod
    def _read_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def _uses_pattern(self, state, kind, payload) -> bool:
        with self.lock:
            pattern = self.pattern
        if not pattern:
            return False
        if kind == b"Q":
            return pattern in payload
        if kind == b"P":  # Parse: name\0 query\0 ...
            name, _, rest = payload.partition(b"\0")
            query = rest.partition(b"\0")[0]
            state["statements"][name] = query
            return pattern in query
        if kind == b"B":  # Bind: portal\0 statement\0 ...
            _, _, rest = payload.partition(b"\0")
            stmt = rest.partition(b"\0")[0]
            return pattern in state["statements"].get(stmt, b"")
        return False

    @staticmethod
    def _is_commit(kind, payload) -> bool:
        if kind == b"Q":
            text = payload.rstrip(b"\0").strip().upper()
            return text in (b"COMMIT", b"COMMIT;", b"END")
        if kind == b"P":
            query = payload.partition(b"\0")[2].partition(b"\0")[0].strip().upper()
            return query in (b"COMMIT", b"COMMIT;")
        return False

    def _frontend(self, client, server, state):
        try:
            # The startup packet (or an SSLRequest/CancelRequest): no type byte.
            while True:
                head = self._read_exact(client, 4)
                (n,) = struct.unpack("!I", head)
                body = self._read_exact(client, n - 4)
                server.sendall(head + body)
                code = struct.unpack("!I", body[:4])[0] if len(body) >= 4 else 0
                if code == 80877103:  # SSLRequest: the server answers 'N'
                    continue
                break
            while True:
                kind = self._read_exact(client, 1)
                head = self._read_exact(client, 4)
                (n,) = struct.unpack("!I", head)
                payload = self._read_exact(client, n - 4)
                if self._is_commit(kind, payload) and state["marked"]:
                    with self.lock:
                        cut = self.remaining > 0
                        if cut:
                            self.remaining -= 1
                    state["marked"] = False
                    if cut:
                        state["cut"] = True
                        server.sendall(kind + head + payload)
                        # Let the server commit and answer, then drop the
                        # client without passing the answer on.
                        state["commit_sent"].wait(5)
                        with self.lock:
                            self.cuts += 1
                        client.close()
                        server.close()
                        return
                elif self._uses_pattern(state, kind, payload):
                    state["marked"] = True
                server.sendall(kind + head + payload)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass

    def _backend(self, client, server, state):
        try:
            while True:
                kind = self._read_exact(server, 1)
                if state["cut"]:
                    # The answer to the cut COMMIT: the server got it.
                    state["commit_sent"].set()
                    return
                if kind == b"N" and not state.get("started"):
                    client.sendall(kind)  # SSLRequest refused: plain text
                    continue
                state["started"] = True
                head = self._read_exact(server, 4)
                (n,) = struct.unpack("!I", head)
                payload = self._read_exact(server, n - 4)
                if state["cut"]:
                    state["commit_sent"].set()
                    return
                client.sendall(kind + head + payload)
        except (OSError, ConnectionError, struct.error):
            state["commit_sent"].set()
        finally:
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass
