//! `X-Hub-Signature-256` checks: HMAC-SHA256 of the raw body under each configured secret,
//! compared in constant time.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix GitHub puts before the hex digest.
const PREFIX: &str = "sha256=";

/// Why a signature was refused; the words go to logs and metrics, never the header's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No webhook secret is configured: every delivery is refused.
    NoSecret,
    /// The request has no `X-Hub-Signature-256` header.
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    Malformed,
    /// No configured secret produces this digest.
    Mismatch,
}

impl Rejection {
    /// A short reason for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::NoSecret => "no webhook secret configured",
            Rejection::Missing => "missing signature",
            Rejection::Malformed => "malformed signature",
            Rejection::Mismatch => "bad signature",
        }
    }
}

/// Checks signatures against every accepted secret (several during a rotation).
#[derive(Clone)]
pub struct Verifier {
    /// One keyed HMAC state per secret: the key schedule is computed once, each check clones it.
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier {{ secrets: [redacted; {}] }}", self.keys.len())
    }
}

impl Verifier {
    /// A verifier accepting any of `secrets`; with none, it refuses everything.
    pub fn new(secrets: &[SecretString]) -> Verifier {
        let keys = secrets
            .iter()
            .filter_map(|s| HmacSha256::new_from_slice(s.expose_secret().as_bytes()).ok())
            .collect();
        Verifier { keys }
    }

    /// How many secrets are accepted.
    pub fn secrets(&self) -> usize {
        self.keys.len()
    }

    /// Refusals that need no body: no secret configured, or no usable header. Returns the
    /// decoded digest to check once the body is read.
    pub fn precheck(&self, header: Option<&[u8]>) -> Result<[u8; 32], Rejection> {
        if self.keys.is_empty() {
            return Err(Rejection::NoSecret);
        }
        let header = header.ok_or(Rejection::Missing)?;
        let hex_digest = header
            .strip_prefix(PREFIX.as_bytes())
            .ok_or(Rejection::Malformed)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| Rejection::Malformed)?;
        Ok(digest)
    }

    /// Whether some secret signs the body made of `parts` with `digest`. Each comparison is
    /// constant-time; which secret matched may show in the timing, not how much of a digest did.
    pub fn verify<B: AsRef<[u8]>>(&self, parts: &[B], digest: &[u8; 32]) -> Result<(), Rejection> {
        let matched = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            for part in parts {
                mac.update(part.as_ref());
            }
            mac.verify_slice(digest).is_ok()
        });
        if matched {
            Ok(())
        } else {
            Err(Rejection::Mismatch)
        }
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` under `secret` (for tests,
/// benchmarks and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secrets: &[&str]) -> Verifier {
        let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
        Verifier::new(&secrets)
    }

    #[test]
    fn github_documented_example_verifies() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let v = verifier(&["It's a Secret to Everybody"]);
        let digest = v.precheck(Some(header.as_bytes())).unwrap();
        assert_eq!(v.verify(&[b"Hello, World!"], &digest), Ok(()));
        assert_eq!(
            v.verify(&["Hello", ", ", "World!"], &digest),
            Ok(()),
            "in parts"
        );
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            header
        );
    }

    #[test]
    fn every_configured_secret_is_accepted_and_others_are_not() {
        let v = verifier(&["old", "new"]);
        for secret in ["old", "new"] {
            let header = sign(secret.as_bytes(), b"{}");
            let digest = v.precheck(Some(header.as_bytes())).unwrap();
            assert_eq!(v.verify(&[b"{}"], &digest), Ok(()));
            assert_eq!(v.verify(&[b"{ }"], &digest), Err(Rejection::Mismatch));
        }
        let other = sign(b"other", b"{}");
        let digest = v.precheck(Some(other.as_bytes())).unwrap();
        assert_eq!(v.verify(&[b"{}"], &digest), Err(Rejection::Mismatch));
    }

    #[test]
    fn unusable_headers_are_refused_before_the_body() {
        let v = verifier(&["s"]);
        assert_eq!(v.precheck(None), Err(Rejection::Missing));
        assert_eq!(v.precheck(Some(b"sha1=abcd")), Err(Rejection::Malformed));
        assert_eq!(v.precheck(Some(b"sha256=zz")), Err(Rejection::Malformed));
        assert_eq!(
            verifier(&[]).precheck(Some(b"sha256=00")),
            Err(Rejection::NoSecret)
        );
        assert_eq!(format!("{v:?}"), "Verifier { secrets: [redacted; 1] }");
    }
}
