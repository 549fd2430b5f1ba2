//! Fabric's TLS binding: with mutual TLS required on the client port, each Broadcast and
//! Deliver envelope must name the client's TLS certificate in `ChannelHeader.tls_cert_hash`
//! (SHA-256 of the leaf's DER), so an envelope captured from one connection cannot be replayed
//! on another. A mismatch is BAD_REQUEST, as Fabric's deliver handler answers it.

use ordo_proto::common::{ChannelHeader, Envelope, Payload};
use prost::Message;
use tonic::Request;

use crate::server::connections::ConnectionInfo;
use ordo_core::processor::Rejection;

/// The certificate hash a stream's envelopes must carry; `None` inside: the connection has no
/// client certificate, so no envelope can be bound to it.
#[derive(Clone, Copy, Debug)]
pub struct Binding(Option<[u8; 32]>);

impl Binding {
    /// The binding of `request`'s connection, or `None` when the check is off.
    pub fn of<T>(request: &Request<T>, required: bool) -> Option<Binding> {
        if !required {
            return None;
        }
        let hash = request
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|info| info.peer_certificates.as_ref())
            .and_then(|certs| certs.leaf())
            .map(|leaf| crate::tls::cert_hash(leaf));
        Some(Binding(hash))
    }

    pub fn check(&self, envelope: &Envelope) -> Result<(), Rejection> {
        let expected = self.0.ok_or_else(|| {
            Rejection::bad_request(
                "mutual TLS is required, but the connection has no client certificate",
            )
        })?;
        let header = Payload::decode(envelope.payload.as_ref())
            .ok()
            .and_then(|p| p.header)
            .and_then(|h| ChannelHeader::decode(h.channel_header.as_ref()).ok())
            .ok_or_else(|| Rejection::bad_request("the envelope has no readable channel header"))?;
        if header.tls_cert_hash.is_empty() {
            return Err(Rejection::bad_request(
                "client didn't include its TLS cert hash (ChannelHeader.tls_cert_hash)",
            ));
        }
        if header.tls_cert_hash.as_ref() != expected.as_slice() {
            return Err(Rejection::bad_request(
                "claimed TLS cert hash (ChannelHeader.tls_cert_hash) is not the SHA-256 of the \
                 connection's client certificate",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(hash: &[u8]) -> Envelope {
        let channel_header = ChannelHeader {
            channel_id: "c".into(),
            tls_cert_hash: hash.to_vec().into(),
            ..Default::default()
        };
        let payload = Payload {
            header: Some(ordo_proto::common::Header {
                channel_header: channel_header.encode_to_vec().into(),
                signature_header: Default::default(),
            }),
            data: Default::default(),
        };
        Envelope {
            payload: payload.encode_to_vec().into(),
            signature: Default::default(),
        }
    }

    #[test]
    fn an_envelope_must_carry_the_hash_of_the_connections_certificate() {
        let hash = crate::tls::cert_hash(b"leaf");
        let binding = Binding(Some(hash));
        binding.check(&envelope(&hash)).unwrap();
        let wrong = binding.check(&envelope(&[0; 32])).unwrap_err();
        assert_eq!(wrong.status, ordo_proto::common::Status::BadRequest);
        let missing = binding.check(&envelope(&[])).unwrap_err();
        assert!(missing.info.contains("didn't include"), "{}", missing.info);
        assert!(Binding(None).check(&envelope(&hash)).is_err());
    }
}
