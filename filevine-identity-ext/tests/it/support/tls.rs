//! A TLS front for a plain-http server on 127.0.0.1: it terminates TLS with
//! the test certificate in `tls/` and forwards the bytes, so the SDK's
//! HTTPS path (rustls with the crate's crypto backend) runs against the
//! project's own test server. The server side uses the same backend as the
//! client: aws-lc-rs by default, ring under `--no-default-features
//! --features ring`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The CA that signed the front's certificate (trust it to connect).
pub const CA_PEM: &[u8] = include_bytes!("tls/ca.pem");
const CERT_PEM: &[u8] = include_bytes!("tls/server.pem");
const KEY_PEM: &[u8] = include_bytes!("tls/server.key");

/// `https://127.0.0.1:<port>` in front of a plain-http backend.
pub struct TlsFront {
    url: String,
    handshakes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Listens on an ephemeral port and forwards every connection whose
    /// handshake completes to `backend` (`http://127.0.0.1:<port>`).
    pub async fn start(backend: &str) -> Self {
        let backend: SocketAddr = backend.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server_config()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let handshakes = Arc::new(AtomicU64::new(0));
        let counter = handshakes.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut upstream) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                    }
                });
            }
        });
        Self { url, handshakes, task }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config() -> rustls::ServerConfig {
    #[cfg(feature = "aws-lc")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc"))]
    let provider = rustls::crypto::ring::default_provider();
    let certs = CertificateDer::pem_slice_iter(CERT_PEM).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}
