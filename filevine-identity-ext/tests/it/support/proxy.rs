//! A TCP fault proxy on loopback, in front of a store or the identity
//! provider: what a flaky network does to a connection, switched at run
//! time. Home-made and small (no maintained proxy on crates.io or PyPI
//! gives an unknown outcome — a request delivered, its answer cut — as a
//! mode to switch at run time in-process).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the bytes passing through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes pass.
    Pass,
    /// Each chunk waits this long.
    Delay(Duration),
    /// Bytes are held, on every connection, until the mode changes.
    Stall,
    /// A request is cut before it reaches the server: the connection
    /// closes instead.
    DropBefore,
    /// A request reaches the server and its answer is cut: the write's
    /// outcome is unknown to the client.
    DropAfter,
    /// Connections are reset (RST) on their next bytes.
    Reset,
    /// Bytes go nowhere and nothing comes back; connections stay open
    /// (the client's timeout ends them) and close when the mode ends.
    BlackHole,
}

impl Mode {
    /// A short name, for schedules and counts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Delay(_) => "delay",
            Self::Stall => "stall",
            Self::DropBefore => "drop-before",
            Self::DropAfter => "drop-after",
            Self::Reset => "reset",
            Self::BlackHole => "black-hole",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    /// Chunks each mode acted on (delayed, held, cut, reset, swallowed).
    hits: Mutex<BTreeMap<&'static str, u64>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap()
    }

    fn hit(&self, mode: Mode) {
        *self.hits.lock().unwrap().entry(mode.name()).or_default() += 1;
    }
}

/// A proxy listening on 127.0.0.1 for one upstream address.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on the current runtime.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared { mode: Mutex::new(Mode::Pass), hits: Mutex::default() });
        let accepting = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream, Arc::clone(&accepting)));
            }
        });
        Proxy { port, shared, accept }
    }

    /// Switches the mode for every connection, open and new.
    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Back to [`Mode::Pass`] if the mode is still `mode` (a later fault
    /// that replaced it is left alone).
    pub fn clear(&self, mode: Mode) {
        let mut current = self.shared.mode.lock().unwrap();
        if *current == mode {
            *current = Mode::Pass;
        }
    }

    /// How many chunks each mode acted on.
    pub fn hits(&self) -> BTreeMap<&'static str, u64> {
        self.shared.hits.lock().unwrap().clone()
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The first direction to end ends the connection: the other pump and
    // its halves are dropped with the `select!`.
    tokio::select! {
        () = pump(client_read, server_write, Direction::ToServer, &shared) => {}
        () = pump(server_read, client_write, Direction::ToClient, &shared) => {}
    }
}

/// Copies one direction, doing to each chunk what the mode says.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, direction: Direction, shared: &Shared) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held while stalled or black-holed. A connection whose bytes went
        // into a black hole does not come back when it ends: TCP never
        // loses bytes and carries on, so it is closed (the client sees a
        // dead connection, as after a real one).
        let (mut held, mut swallowed) = (false, false);
        loop {
            let mode = shared.mode();
            if !matches!(mode, Mode::Stall | Mode::BlackHole) {
                break;
            }
            if !held {
                shared.hit(mode);
                held = true;
            }
            swallowed |= mode == Mode::BlackHole;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if swallowed {
            return;
        }
        let mode = shared.mode();
        match (mode, direction) {
            (Mode::Delay(pause), _) => {
                shared.hit(mode);
                tokio::time::sleep(pause).await;
            }
            (Mode::DropBefore, Direction::ToServer) | (Mode::DropAfter, Direction::ToClient) => {
                shared.hit(mode);
                return;
            }
            (Mode::Reset, _) => {
                shared.hit(mode);
                // Linger zero: closing sends RST instead of FIN, on both
                // sockets this pump holds a half of.
                let _ = from.as_ref().set_zero_linger();
                let _ = to.as_ref().set_zero_linger();
                return;
            }
            _ => {}
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
