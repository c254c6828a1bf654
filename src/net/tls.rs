//! TLS 1.3 for sessions (rustls): both sides present the self-signed
//! certificate of their identity; there is no certificate authority.
//! Who a certificate belongs to is decided after the handshake by its
//! fingerprint (advertised in TXT `fp=`, pinned on first contact, and bound
//! to the peer id in `hello`; see `policy::Policy`). The verifiers here
//! only check that the peer holds the key of the certificate it presents.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use super::stream::Tcp;
use crate::identity::Keys;
use crate::protocol::Fingerprint;

/// How long a TLS handshake may take, either side.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server name a dialer puts in its ClientHello. Certificates are not
/// checked against it: a peer is known by its fingerprint, not by a name.
const SERVER_NAME: &str = "lantalk";

/// Our TLS configurations, made once per process from the identity's keys.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// Our own certificate's fingerprint.
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS 1.3 only, with `keys` on both the server and the client side.
    pub fn new(keys: &Keys) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(vec![keys.cert.clone()], keys.key.clone_key())?;
        // Every session is a full handshake: a resumed one would not show
        // the client's certificate again.
        server.send_tls13_tickets = 0;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![keys.cert.clone()], keys.key.clone_key())?;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            fingerprint: keys.fingerprint,
        })
    }

    /// The server side of a handshake on an accepted connection whose first
    /// byte was 0x16. Returns the stream and the fingerprint of the client's
    /// certificate, if it presented one.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<Tcp>, Option<Fingerprint>)> {
        let tls = within(self.acceptor.accept(Tcp(stream))).await?;
        let fp = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(first_fingerprint);
        Ok((TlsStream::Server(tls), fp))
    }

    /// The client side of a handshake on a dialled connection. Returns the
    /// stream and the fingerprint of the server's certificate.
    pub async fn connect(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<Tcp>, Fingerprint)> {
        let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
        let tls = within(self.connector.connect(name, Tcp(stream))).await?;
        let fp = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(first_fingerprint)
            .ok_or_else(|| std::io::Error::other("the peer presented no certificate"))?;
        Ok((TlsStream::Client(tls), fp))
    }
}

async fn within<T>(handshake: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(done) => done,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "TLS handshake not completed within {} s",
                TLS_HANDSHAKE_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn first_fingerprint(certs: &[CertificateDer<'_>]) -> Option<Fingerprint> {
    certs.first().map(|c| Fingerprint::of_cert(c))
}

/// Accepts any certificate whose key signs the handshake: identity is
/// checked afterwards, by fingerprint.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
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
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
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

    /// A client without a certificate (a phone script) still gets an
    /// encrypted session, shown as unauthenticated.
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
