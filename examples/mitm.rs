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
//! mitm --to HOST:PORT [--port N] [--rewrite-id] [--name NAME] [--kill-tls]
//! ```
//!
//! With `--rewrite-id`, the `id` of every `hello` relayed (either way) is
//! replaced by the id the relay's own certificate proves, so that the id
//! check passes and only a pinned or advertised key can give it away; with
//! `--name`, its `name` too. With `--kill-tls` it is a downgrade relay:
//! it closes a connection that starts with a TLS hello without a word (as a
//! lantalk from before TLS does), and relays plaintext sessions to the
//! peer over TLS, as `--rewrite-id` (its own id: the peer checks it). It
//! prints `closed a TLS hello from ADDR` for each one it killed.
//! Prints `listening on port N fp FINGERPRINT` once it accepts, then one
//! line per relayed frame: `client->server {json}` or `server->client {json}`.
//! Runs until killed.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use lantalk::identity::Keys;
use lantalk::net::Tls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    /// Put this name in every relayed hello.
    #[arg(long)]
    name: Option<String>,
    /// Close connections that start with a TLS hello; relay plaintext.
    #[arg(long)]
    kill_tls: bool,
}

/// What to change in every `hello` relayed.
#[derive(Debug, Clone, Default)]
struct Rewrite {
    id: Option<String>,
    name: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // lantalk's own TLS set-up, with keys of the relay's own: it accepts
    // any certificate and presents its own, as a real relay would.
    let (keys, _) = Keys::generate()?;
    let fp = keys.fingerprint;
    let tls = Tls::new(&keys)?;
    let rewrite = Rewrite {
        id: (args.rewrite_id || args.kill_tls).then(|| fp.peer_id()),
        name: args.name.clone(),
    };

    // `[::]` takes IPv4 too (Linux): a peer may dial any address mDNS gave it.
    let listener = TcpListener::bind(("::", args.port)).await?;
    println!(
        "listening on port {} fp {fp}",
        listener.local_addr()?.port()
    );
    std::io::stdout().flush()?;
    loop {
        let (stream, from) = listener.accept().await?;
        let (tls, rewrite) = (tls.clone(), rewrite.clone());
        tokio::spawn(async move {
            let relayed = if args.kill_tls {
                downgrade(stream, from, &tls, args.to, rewrite).await
            } else {
                relay(stream, &tls, args.to, rewrite).await
            };
            if let Err(e) = relayed {
                println!("relay for {from} ended: {e}");
            }
        });
    }
}

/// Closes a connection that starts with a TLS hello; relays a plaintext
/// one to `to` over TLS.
async fn downgrade(
    stream: TcpStream,
    from: SocketAddr,
    tls: &Tls,
    to: SocketAddr,
    rewrite: Rewrite,
) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 1 && first[0] == 0x16 {
        // Read, then closed: an end of stream, not a reset.
        let mut hello = vec![0u8; 16 * 1024];
        let mut stream = stream;
        let _ = stream.read(&mut hello).await;
        println!("closed a TLS hello from {from}");
        std::io::stdout().flush()?;
        return Ok(());
    }
    let upstream = TcpStream::connect(to).await?;
    let (server, _) = tls.connect(upstream).await?;
    let (client_read, client_write) = stream.into_split();
    let (server_read, server_write) = tokio::io::split(server);
    let up = pump(client_read, server_write, "client->server", rewrite.clone());
    let down = pump(server_read, client_write, "server->client", rewrite);
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// Terminates the client's TLS, opens TLS to `to`, relays both ways.
async fn relay(
    stream: TcpStream,
    tls: &Tls,
    to: SocketAddr,
    rewrite: Rewrite,
) -> std::io::Result<()> {
    let (client, _) = tls.accept(stream).await?;
    let upstream = TcpStream::connect(to).await?;
    let (server, _) = tls.connect(upstream).await?;
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    let up = pump(client_read, server_write, "client->server", rewrite.clone());
    let down = pump(server_read, client_write, "server->client", rewrite);
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// Copies frames from `from` to `to` until the end of the stream, printing
/// each; then closes `to`'s write side. A `hello` gets the id and name of
/// `rewrite`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    label: &str,
    rewrite: Rewrite,
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
        let rewrites = rewrite.id.is_some() || rewrite.name.is_some();
        if rewrites
            && let Ok(mut msg) = serde_json::from_slice::<serde_json::Value>(&payload)
            && msg["type"] == "hello"
        {
            if let Some(id) = &rewrite.id {
                msg["id"] = id.clone().into();
            }
            if let Some(name) = &rewrite.name {
                msg["name"] = name.clone().into();
            }
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
