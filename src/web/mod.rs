//! The web client: a chat page and its WebSocket served on lantalk's own
//! port to a phone's browser (the only module naming the HTTP stack).
//!
//! What exists so far: the join token ([`token`]), the address a phone
//! opens ([`url`]) and its QR code as terminal text ([`qr`]).

pub mod qr;
pub mod token;
pub mod url;
