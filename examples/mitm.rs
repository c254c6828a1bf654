//! A man in the middle for the tests: a TLS-terminating relay with a
//! self-signed certificate of its own. It accepts TLS from anyone (asking
//! for a client certificate, accepting any), connects to the real peer with
//! TLS presenting its own certificate, and relays the decrypted bytes both
//! ways, printing every frame it relays. It is what someone on the LAN who
//! answers for a peer's name would run; lantalk must notice and refuse.
//!
//! It listens on every address (IPv4 and IPv6) of the network namespace it
//! runs in; the tests start it only inside namespaces they created.
//!
//! ```text
//! mitm --to HOST:PORT [--port N] [--rewrite-id]
//! ```
//!
//! With `--rewrite-id`, the `id` of every `hello` relayed (either way) is
//! replaced by the id the relay's own certificate proves, so that the id
//! check passes and only a pinned or advertised key can give it away.
//! Prints `listening on port N fp FINGERPRINT` once it accepts, then one
//! line per relayed frame: `client->server {json}` or `server->client {json}`.
//! Runs until killed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use lantalk::protocol::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, Parser)]
struct Args {
    /// The real peer.
    #[arg(long)]
    to: SocketAddr,
    /// Port to accept on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Put the relay's own id in every relayed hello.
    #[arg(long)]
    rewrite_id: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let made = rcgen::generate_simple_self_signed(vec!["lantalk".to_owned()])?;
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())?;
    let fp = Fingerprint::of_cert(&cert);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate::new(&provider));
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![cert.clone()], key.clone_key())?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)?;
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let connector = TlsConnector::from(Arc::new(client));
    let rewrite = args.rewrite_id.then(|| fp.peer_id());

    // `[::]` takes IPv4 too (Linux): a peer may dial any address mDNS gave it.
    let listener = TcpListener::bind(("::", args.port)).await?;
    println!(
        "listening on port {} fp {fp}",
        listener.local_addr()?.port()
    );
    std::io::stdout().flush()?;
    loop {
        let (stream, from) = listener.accept().await?;
        let (acceptor, connector, rewrite) = (acceptor.clone(), connector.clone(), rewrite.clone());
        tokio::spawn(async move {
            if let Err(e) = relay(stream, acceptor, connector, args.to, rewrite).await {
                println!("relay for {from} ended: {e}");
            }
        });
    }
}

/// Terminates the client's TLS, opens TLS to `to`, relays both ways.
async fn relay(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    to: SocketAddr,
    rewrite: Option<String>,
) -> std::io::Result<()> {
    let client = acceptor.accept(stream).await?;
    let upstream = TcpStream::connect(to).await?;
    let name = ServerName::try_from("lantalk").expect("a valid name");
    let server = connector.connect(name, upstream).await?;
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    let up = pump(client_read, server_write, "client->server", rewrite.clone());
    let down = pump(server_read, client_write, "server->client", rewrite);
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// Copies frames from `from` to `to` until the end of the stream, printing
/// each; then closes `to`'s write side. A `hello` gets the id `rewrite`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    label: &str,
    rewrite: Option<String>,
) -> std::io::Result<()> {
    loop {
        let mut header = [0u8; 4];
        if from.read_exact(&mut header).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > 1 << 20 {
            println!("{label}: frame length {len}, not lantalk; stopping");
            break;
        }
        let mut payload = vec![0u8; len];
        from.read_exact(&mut payload).await?;
        if let (Some(id), Ok(mut msg)) = (
            &rewrite,
            serde_json::from_slice::<serde_json::Value>(&payload),
        ) && msg["type"] == "hello"
        {
            msg["id"] = id.clone().into();
            payload = msg.to_string().into_bytes();
        }
        println!("{label} {}", String::from_utf8_lossy(&payload));
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        to.write_all(&frame).await?;
        to.flush().await?;
    }
    to.shutdown().await
}

/// Accepts any certificate whose key signs the handshake, server or client.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for AnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(self, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(self, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
