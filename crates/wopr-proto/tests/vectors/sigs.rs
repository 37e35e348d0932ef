//! Ed25519 signatures that some verifiers accept and `verify_strict` (§1) refuses, made by hand on an
//! inject envelope. Each one is checked here to be accepted by a looser rule, so the vector really tells
//! the rules apart.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};
use wopr_identity::{Identity, PublicId, domain_bytes};
use wopr_proto::message::{Envelope, MESSAGE_DOMAIN, Message};

/// A point of order 8 (canonical encoding).
const ORDER_8: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn order_8() -> EdwardsPoint {
    let p = CompressedEdwardsY(hex::decode(ORDER_8).expect("hex").try_into().expect("32"))
        .decompress()
        .expect("a point");
    assert!(p.is_small_order() && !(p + p + p + p).is_identity(), "order 8");
    p
}

/// The author signature of an inject: (author, signature).
fn parts(env: &Envelope) -> (PublicId, [u8; 64]) {
    match &env.message {
        Message::Inject(m) => (m.author, m.signature),
        _ => panic!("an inject"),
    }
}

fn with_signature(env: &Envelope, author: [u8; 32], signature: [u8; 64]) -> Envelope {
    let mut e = env.clone();
    if let Message::Inject(m) = &mut e.message {
        m.author = PublicId(author);
        m.signature = signature;
    }
    e
}

fn message(env: &Envelope, recipient: &PublicId) -> Vec<u8> {
    domain_bytes(MESSAGE_DOMAIN, &env.signed_bytes(recipient).expect("signed type"))
}

/// k = SHA-512(R || A || M) mod L.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let h: [u8; 64] = Sha512::new().chain_update(r).chain_update(a).chain_update(m).finalize().into();
    Scalar::from_bytes_mod_order_wide(&h)
}

/// The secret scalar of an Ed25519 seed (RFC 8032 §5.1.5).
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h: [u8; 64] = Sha512::digest(seed).into();
    let mut a: [u8; 32] = h[..32].try_into().expect("32");
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

fn loosely_verifies(author: &[u8; 32], m: &[u8], sig: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(author).is_ok_and(|k| k.verify(m, &Signature::from_bytes(sig)).is_ok())
}

/// The inject's own signature with L added to S: the same signature to a verifier that reduces S.
pub fn non_canonical_s(env: &Envelope) -> Envelope {
    let (author, mut sig) = parts(env);
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits 256 bits");
    with_signature(env, author.0, sig)
}

/// A small-order author key (the identity point) with R = identity and S = 0: valid for every message
/// under the plain RFC 8032 equation. Returns the envelope and the author key.
pub fn small_order_author(env: &Envelope, recipient: &PublicId) -> (Envelope, PublicId) {
    let identity = EdwardsPoint::default().compress().to_bytes();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    let forged = with_signature(env, identity, sig);
    assert!(
        loosely_verifies(&identity, &message(&forged, recipient), &sig),
        "accepted without the order check"
    );
    (forged, PublicId(identity))
}

/// A small-order R under a mixed-order key A = aB + T (T of order 8): with S = k·a, [S]B − [k]A = −[k]T,
/// which equals R for one R in eight. The envelope nonce is varied until it does. Accepted by the plain
/// cofactorless equation; refused because R has small order. Returns the envelope and the author key.
pub fn small_order_r(env: &Envelope, recipient: &PublicId) -> (Envelope, PublicId) {
    let t = order_8();
    let a = secret_scalar(&[0x5a; 32]);
    let author = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
    for n in 0..=255u8 {
        let mut candidate = env.clone();
        candidate.nonce[15] = n;
        let candidate = with_signature(&candidate, author, [0; 64]);
        let m = message(&candidate, recipient);
        for j in 1..8u64 {
            let r = (t * Scalar::from(j)).compress().to_bytes();
            let k = challenge(&r, &author, &m);
            if -(t * k) == t * Scalar::from(j) {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&r);
                sig[32..].copy_from_slice((k * a).as_bytes());
                let forged = with_signature(&candidate, author, sig);
                assert!(loosely_verifies(&author, &m, &sig), "accepted without the order check");
                return (forged, PublicId(author));
            }
        }
    }
    panic!("no nonce gave a small-order R");
}

/// The signer's own key, but R = rB + T carries a torsion component: accepted by the cofactored equation
/// [8][S]B = [8]R + [8][k]A, refused by the cofactorless one this protocol uses.
pub fn mixed_order_r(env: &Envelope, signer: &Identity, recipient: &PublicId) -> Envelope {
    let a = secret_scalar(&signer.signing_seed());
    let author = signer.public_id().0;
    assert_eq!(EdwardsPoint::mul_base(&a).compress().to_bytes(), author);
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(b"wopr vectors: mixed-order R").into());
    let big_r = EdwardsPoint::mul_base(&r) + order_8();
    let r_bytes = big_r.compress().to_bytes();
    let m = message(env, recipient);
    let k = challenge(&r_bytes, &author, &m);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    let a_point = EdwardsPoint::mul_base(&a);
    let lhs = (EdwardsPoint::mul_base(&s) - a_point * k - big_r).mul_by_cofactor();
    assert!(lhs.is_identity(), "the cofactored equation holds");
    assert!(!loosely_verifies(&author, &m, &sig), "the cofactorless equation does not");
    with_signature(env, author, sig)
}
