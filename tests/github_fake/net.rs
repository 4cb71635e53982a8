//! Serving a test router on 127.0.0.1:0 over connections a fault can kill, so a "dropped
//! connection" really closes the socket before (or after) the handler ran.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One accepted connection, reachable from handlers as `ConnectInfo<Conn>`.
#[derive(Clone, Debug)]
pub struct Conn {
    killed: Arc<AtomicBool>,
}

impl Conn {
    /// Every further read or write fails, which ends the connection.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

pub struct Killable {
    inner: TcpListener,
}

impl Listener for Killable {
    type Io = KillableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, _)) = self.inner.accept().await {
                let killed = Arc::new(AtomicBool::new(false));
                let io = KillableStream {
                    inner: stream,
                    killed: killed.clone(),
                };
                return (io, Conn { killed });
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            killed: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<IncomingStream<'_, Killable>> for Conn {
    fn connect_info(stream: IncomingStream<'_, Killable>) -> Self {
        stream.remote_addr().clone()
    }
}

pub struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "killed by a fault",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A router served in the background until dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    cancel: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Serves `router` on a fresh loopback port.
pub async fn serve(router: axum::Router) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let app = router.into_make_service_with_connect_info::<Conn>();
    tokio::spawn(async move {
        let _ = axum::serve(Killable { inner: listener }, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Served {
        base_url: format!("http://{addr}"),
        cancel,
    }
}
