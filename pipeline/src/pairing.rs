//! Pairing a viewer with a camera over a local network, authenticated by an 8-digit setup
//! code (`docs/PROTOCOL.md` §9).
//!
//! What this module does **not** do: it opens no sockets, reads no clocks and touches no
//! files. Each side is a chain of states (`Expect*`) that consumes one message and returns
//! the next state and the bytes to send; the binary moves the bytes over TCP, enforces the
//! time-outs, and installs or pins what comes out. [`frame_len`] bounds every message before
//! it is read, with a cap that depends on the state.
//!
//! The exchange, viewer `V` (SPAKE2 side A) and camera `C` (side B):
//! ```text
//! V -> C  hello    = "CSPK" | version u8 (=1) | SPAKE2 message A (33)
//! C -> V  share    = SPAKE2 message B (33) | confirm_C (32)
//! V -> C  list     = confirm_V (32) | AES-256-GCM(k_vc, signed recipient list)
//! C -> V  result   = AES-256-GCM(k_cv, status | camera key | camera id | signature)
//! ```
//! Nothing keyed leaves either side before it has checked the other side's confirmation, so a
//! party that does not know the code learns only whether its one guess per attempt was right.

use camseal_kernels::{Aead, Suite};
use ed25519_dalek::{Signature, Signer};
use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::{CameraPublic, CameraSecret, RecipientList};

/// Why a pairing attempt ended.
///
/// A wrong setup code and a message changed on the way look the same ([`PairingError::Failed`]):
/// telling them apart would need the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    /// The setup code is not 8 decimal digits.
    #[error("a setup code is 8 digits (spaces and dashes are ignored)")]
    BadCode,
    /// The peer's key confirmation did not verify: a wrong setup code on one side, or someone
    /// in the middle who does not know it.
    #[error(
        "pairing failed: the setup code does not match (or someone between the viewer and the \
         camera changed the messages)"
    )]
    Failed,
    /// A message does not have the expected shape.
    #[error("malformed pairing message: {0}")]
    Malformed(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The camera authenticated itself but refused the recipient list; the text says why.
    #[error("the camera refused the recipient list: {0}")]
    Refused(String),
    /// A message is longer than the cap for this step.
    #[error("pairing message of {len} bytes is longer than the {cap} allowed at this step")]
    TooLong {
        /// The announced length.
        len: usize,
        /// The cap for this step.
        cap: usize,
    },
}

/// The 8-digit setup code the camera shows and the user types on the viewer.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SetupCode {
    digits: [u8; CODE_DIGITS],
}

impl SetupCode {
    /// A uniformly random code from the OS CSPRNG.
    pub fn generate() -> Result<Self, PairingError> {
        // Rejection sampling: 4.2e9 is the largest multiple of 1e8 below 2^32, so every code
        // is equally likely.
        loop {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).map_err(|_| PairingError::Random)?;
            let n = u32::from_be_bytes(b);
            b.zeroize();
            if n < 4_200_000_000 {
                let mut n = n % 100_000_000;
                let mut digits = [0u8; CODE_DIGITS];
                for d in digits.iter_mut().rev() {
                    *d = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                return Ok(SetupCode { digits });
            }
        }
    }

    /// Reads a typed code: 8 digits, with any spaces and dashes ignored.
    pub fn parse(s: &str) -> Result<Self, PairingError> {
        let mut digits = [0u8; CODE_DIGITS];
        let mut n = 0;
        for c in s.trim().bytes() {
            match c {
                b' ' | b'-' => {}
                b'0'..=b'9' if n < CODE_DIGITS => {
                    digits[n] = c;
                    n += 1;
                }
                _ => return Err(PairingError::BadCode),
            }
        }
        if n != CODE_DIGITS {
            return Err(PairingError::BadCode);
        }
        Ok(SetupCode { digits })
    }

    /// The 8 digits as text, for display.
    pub fn as_str(&self) -> &str {
        // Invariant: every byte is an ASCII digit (generate and parse only store those).
        std::str::from_utf8(&self.digits).unwrap_or("")
    }
}

impl core::fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SetupCode(<redacted>)")
    }
}

/// Frames a message: a 4-byte big-endian length, then the message.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + message.len());
    // Invariant: every message this module builds is below MAX_LIST_MESSAGE, far below 4 GiB.
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The length announced by a frame header, checked against the cap of the current step
/// before anything is allocated or read.
pub fn frame_len(header: [u8; 4], cap: usize) -> Result<usize, PairingError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > cap {
        return Err(PairingError::TooLong { len, cap });
    }
    Ok(len)
}

/// The viewer before anything is sent: [`ViewerStart::start`] begins an attempt.
pub struct ViewerStart;

impl ViewerStart {
    /// Starts an attempt with `code`, to deliver `signed_list` (a signed recipient list).
    /// Returns the state waiting for the camera's share, and the `hello` message.
    pub fn start(
        code: &SetupCode,
        signed_list: Vec<u8>,
    ) -> Result<(ExpectCameraShare, Vec<u8>), PairingError> {
        RecipientList::parse_signed(&signed_list)
            .map_err(|e| PairingError::Malformed(format!("the recipient list to send: {e}")))?;
        let (spake, share) = Spake2::<Ed25519Group>::start_a(
            &Password::new(code.digits),
            &Identity::new(ID_VIEWER),
            &Identity::new(ID_CAMERA),
        );
        let mut hello = Vec::with_capacity(HELLO_LEN);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(&share);
        Ok((
            ExpectCameraShare {
                spake,
                hello: hello.clone(),
                signed_list,
            },
            hello,
        ))
    }
}

/// The viewer has sent `hello` and waits for the camera's share and confirmation.
pub struct ExpectCameraShare {
    spake: Spake2<Ed25519Group>,
    hello: Vec<u8>,
    signed_list: Vec<u8>,
}

impl ExpectCameraShare {
    /// The longest message accepted at this step.
    pub const MAX_LEN: usize = SHARE_LEN;

    /// Checks the camera's confirmation. Only if it verifies is the list sent, encrypted.
    pub fn receive(self, share: &[u8]) -> Result<(ExpectCameraResult, Vec<u8>), PairingError> {
        if share.len() != SHARE_LEN {
            return Err(malformed("share", share.len(), SHARE_LEN));
        }
        let (spake_b, confirm_c) = share.split_at(SPAKE_MSG_LEN);
        let keys = Keys::derive(self.spake, &self.hello, spake_b)?;
        keys.check_confirm(&keys.confirm_camera, confirm_c)?;
        let mut out = Vec::with_capacity(CONFIRM_LEN + self.signed_list.len() + TAG_LEN);
        out.extend_from_slice(&keys.tag(&keys.confirm_viewer));
        out.extend_from_slice(&seal(
            &keys.viewer_to_camera,
            &keys.transcript,
            &self.signed_list,
        )?);
        let list_digest: [u8; 32] = Sha256::digest(&self.signed_list).into();
        Ok((ExpectCameraResult { keys, list_digest }, out))
    }
}

/// The viewer has sent the list and waits for the camera's answer.
pub struct ExpectCameraResult {
    keys: Keys,
    list_digest: [u8; 32],
}

impl ExpectCameraResult {
    /// The longest message accepted at this step.
    pub const MAX_LEN: usize = 1 + 32 + 16 + 64 + MAX_REASON + TAG_LEN;

    /// Opens the camera's answer: on success, the camera's public key, which it proved it
    /// holds by signing this attempt's transcript and the list it installed.
    pub fn receive(self, message: &[u8]) -> Result<CameraPublic, PairingError> {
        if message.len() > Self::MAX_LEN {
            return Err(PairingError::TooLong {
                len: message.len(),
                cap: Self::MAX_LEN,
            });
        }
        let plain = open(&self.keys.camera_to_viewer, &self.keys.transcript, message)?;
        match plain.split_first() {
            Some((&STATUS_PAIRED, rest)) if rest.len() == 32 + 16 + 64 => {
                let (key, rest) = rest.split_at(32);
                let (id, sig) = rest.split_at(16);
                let mut ed25519 = [0u8; 32];
                ed25519.copy_from_slice(key);
                let camera = CameraPublic { ed25519 };
                let verifying = camera
                    .verifying_key()
                    .map_err(|e| PairingError::Malformed(format!("camera key: {e}")))?;
                if id != camera.id().as_bytes() {
                    return Err(PairingError::Malformed(
                        "the camera id does not belong to the camera key".into(),
                    ));
                }
                let mut signature = [0u8; 64];
                signature.copy_from_slice(sig);
                let msg = camera_proof_message(&self.keys.transcript, &self.list_digest);
                verifying
                    .verify_strict(&msg, &Signature::from_bytes(&signature))
                    .map_err(|_| PairingError::Failed)?;
                Ok(camera)
            }
            Some((&STATUS_REFUSED, reason)) if reason.len() <= MAX_REASON => {
                let reason = String::from_utf8_lossy(reason)
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                Err(PairingError::Refused(reason))
            }
            _ => Err(PairingError::Malformed("camera result".into())),
        }
    }
}

/// The camera waiting for a viewer's `hello`, holding the code it displayed.
pub struct ExpectViewerHello {
    code: SetupCode,
}

impl ExpectViewerHello {
    /// The longest message accepted at this step.
    pub const MAX_LEN: usize = HELLO_LEN;

    /// A camera that will pair with whoever proves knowledge of `code`.
    pub fn new(code: SetupCode) -> Self {
        ExpectViewerHello { code }
    }

    /// Answers a `hello` with the camera's share and confirmation.
    ///
    /// From here on the peer can test one guess of the code offline against the
    /// confirmation, so the caller must count the attempt as failed unless
    /// [`ExpectViewerList::receive`] succeeds.
    pub fn receive(self, hello: &[u8]) -> Result<(ExpectViewerList, Vec<u8>), PairingError> {
        if hello.len() != HELLO_LEN || &hello[..4] != MAGIC || hello[4] != VERSION {
            return Err(PairingError::Malformed(
                "not a camseal pairing hello (version 1)".into(),
            ));
        }
        let (spake, spake_b) = Spake2::<Ed25519Group>::start_b(
            &Password::new(self.code.digits),
            &Identity::new(ID_VIEWER),
            &Identity::new(ID_CAMERA),
        );
        let keys = Keys::derive_b(spake, hello, &spake_b)?;
        let mut out = Vec::with_capacity(SHARE_LEN);
        out.extend_from_slice(&spake_b);
        out.extend_from_slice(&keys.tag(&keys.confirm_camera));
        Ok((ExpectViewerList { keys }, out))
    }
}

/// The camera has sent its share and waits for the viewer's confirmation and list.
pub struct ExpectViewerList {
    keys: Keys,
}

impl ExpectViewerList {
    /// The longest message accepted at this step: a confirmation and the largest list.
    pub const MAX_LEN: usize = CONFIRM_LEN + MAX_LIST_MESSAGE + TAG_LEN;

    /// Checks the viewer's confirmation, then decrypts the signed recipient list it sent.
    /// The list is returned as received; installing it (and its checks) is the caller's.
    pub fn receive(self, message: &[u8]) -> Result<(Vec<u8>, AnswerViewer), PairingError> {
        if message.len() < CONFIRM_LEN + TAG_LEN {
            return Err(PairingError::Malformed("list message too short".into()));
        }
        if message.len() > Self::MAX_LEN {
            return Err(PairingError::TooLong {
                len: message.len(),
                cap: Self::MAX_LEN,
            });
        }
        let (confirm_v, sealed) = message.split_at(CONFIRM_LEN);
        self.keys
            .check_confirm(&self.keys.confirm_viewer, confirm_v)?;
        let list = open(&self.keys.viewer_to_camera, &self.keys.transcript, sealed)?;
        Ok((list, AnswerViewer { keys: self.keys }))
    }
}

/// The camera holds an authenticated list and owes the viewer its answer.
pub struct AnswerViewer {
    keys: Keys,
}

impl AnswerViewer {
    /// The list is installed: send the camera key and id, with a signature over this
    /// attempt's transcript and the list, so the viewer knows the camera holds that key.
    pub fn paired(
        self,
        camera: &CameraSecret,
        signed_list: &[u8],
    ) -> Result<Vec<u8>, PairingError> {
        let public = camera.public();
        let digest: [u8; 32] = Sha256::digest(signed_list).into();
        let sig = camera
            .signing_key()
            .sign(&camera_proof_message(&self.keys.transcript, &digest));
        let mut plain = Vec::with_capacity(1 + 32 + 16 + 64);
        plain.push(STATUS_PAIRED);
        plain.extend_from_slice(&public.ed25519);
        plain.extend_from_slice(public.id().as_bytes());
        plain.extend_from_slice(&sig.to_bytes());
        seal(&self.keys.camera_to_viewer, &self.keys.transcript, &plain)
    }

    /// The list was refused (for example, it is signed by another account than the one this
    /// camera is pinned to): tell the authenticated viewer why.
    pub fn refused(self, reason: &str) -> Result<Vec<u8>, PairingError> {
        let mut end = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut plain = vec![STATUS_REFUSED];
        plain.extend_from_slice(&reason.as_bytes()[..end]);
        seal(&self.keys.camera_to_viewer, &self.keys.transcript, &plain)
    }
}

/// The keys of one attempt, all derived from the SPAKE2 output and the transcript.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Keys {
    transcript: [u8; 32],
    confirm_camera: [u8; 32],
    confirm_viewer: [u8; 32],
    viewer_to_camera: [u8; 32],
    camera_to_viewer: [u8; 32],
}

impl Keys {
    /// Viewer side: `hello` is ours, `spake_b` the camera's.
    fn derive(
        spake: Spake2<Ed25519Group>,
        hello: &[u8],
        spake_b: &[u8],
    ) -> Result<Self, PairingError> {
        let k = Zeroizing::new(
            spake
                .finish(spake_b)
                .map_err(|e| PairingError::Malformed(format!("camera share: {e}")))?,
        );
        Ok(Self::schedule(&k, hello, spake_b))
    }

    /// Camera side: `hello` is the viewer's, `spake_b` ours.
    fn derive_b(
        spake: Spake2<Ed25519Group>,
        hello: &[u8],
        spake_b: &[u8],
    ) -> Result<Self, PairingError> {
        let k = Zeroizing::new(
            spake
                .finish(&hello[5..])
                .map_err(|e| PairingError::Malformed(format!("viewer share: {e}")))?,
        );
        Ok(Self::schedule(&k, hello, spake_b))
    }

    fn schedule(k: &[u8], hello: &[u8], spake_b: &[u8]) -> Self {
        let transcript: [u8; 32] = Sha256::new()
            .chain_update(TRANSCRIPT_CONTEXT)
            .chain_update(hello)
            .chain_update(spake_b)
            .finalize()
            .into();
        let hk = Hkdf::<Sha256>::new(Some(&transcript), k);
        let expand = |info: &[u8]| {
            let mut out = [0u8; 32];
            // Invariant: 32 bytes is far below HKDF-SHA256's output limit.
            hk.expand(info, &mut out)
                .expect("32-byte HKDF output is always valid");
            out
        };
        Keys {
            transcript,
            confirm_camera: expand(INFO_CONFIRM_CAMERA),
            confirm_viewer: expand(INFO_CONFIRM_VIEWER),
            viewer_to_camera: expand(INFO_VIEWER_TO_CAMERA),
            camera_to_viewer: expand(INFO_CAMERA_TO_VIEWER),
        }
    }

    fn mac(key: &[u8; 32]) -> hmac::Hmac<Sha256> {
        // Invariant: HMAC accepts keys of any length.
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
    }

    fn tag(&self, key: &[u8; 32]) -> [u8; 32] {
        let mut mac = Self::mac(key);
        mac.update(&self.transcript);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a peer's confirmation.
    fn check_confirm(&self, key: &[u8; 32], got: &[u8]) -> Result<(), PairingError> {
        let mut mac = Self::mac(key);
        mac.update(&self.transcript);
        mac.verify_slice(got).map_err(|_| PairingError::Failed)
    }
}

fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, PairingError> {
    let aead = Aead::new(Suite::Aes256Gcm, key)
        .map_err(|e| PairingError::Malformed(format!("AES-GCM: {e}")))?;
    let mut buf = plain.to_vec();
    // Each direction's key seals exactly one message, so a fixed nonce never repeats.
    let tag = aead
        .seal_in_place(&[0; 12], aad, &mut buf)
        .map_err(|e| PairingError::Malformed(format!("AES-GCM: {e}")))?;
    buf.extend_from_slice(&tag);
    Ok(buf)
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PairingError> {
    if sealed.len() < TAG_LEN {
        return Err(PairingError::Malformed("sealed message too short".into()));
    }
    let aead = Aead::new(Suite::Aes256Gcm, key)
        .map_err(|e| PairingError::Malformed(format!("AES-GCM: {e}")))?;
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let mut tag_arr = [0u8; TAG_LEN];
    tag_arr.copy_from_slice(tag);
    let mut buf = ct.to_vec();
    aead.open_in_place(&[0; 12], aad, &mut buf, &tag_arr)
        .map_err(|_| PairingError::Failed)?;
    Ok(buf)
}

fn camera_proof_message(transcript: &[u8; 32], list_digest: &[u8; 32]) -> Vec<u8> {
    [CAMERA_PROOF_CONTEXT, &transcript[..], &list_digest[..]].concat()
}

fn malformed(what: &str, got: usize, want: usize) -> PairingError {
    PairingError::Malformed(format!("{what} is {got} bytes, not {want}"))
}

const CODE_DIGITS: usize = 8;
const MAGIC: &[u8; 4] = b"CSPK";
const VERSION: u8 = 1;
const ID_VIEWER: &[u8] = b"camseal viewer";
const ID_CAMERA: &[u8] = b"camseal camera";
/// A side byte and a compressed Edwards point.
const SPAKE_MSG_LEN: usize = 33;
const CONFIRM_LEN: usize = 32;
const TAG_LEN: usize = 16;
const HELLO_LEN: usize = 4 + 1 + SPAKE_MSG_LEN;
const SHARE_LEN: usize = SPAKE_MSG_LEN + CONFIRM_LEN;
/// The largest signed recipient list (`docs/PROTOCOL.md` §3.2).
const MAX_LIST_MESSAGE: usize = 1_066_352;
const MAX_REASON: usize = 1024;
const STATUS_PAIRED: u8 = 0;
const STATUS_REFUSED: u8 = 1;
const TRANSCRIPT_CONTEXT: &[u8] = b"camseal pairing v1";
const INFO_CONFIRM_CAMERA: &[u8] = b"camseal pairing v1 confirm camera";
const INFO_CONFIRM_VIEWER: &[u8] = b"camseal pairing v1 confirm viewer";
const INFO_VIEWER_TO_CAMERA: &[u8] = b"camseal pairing v1 viewer to camera";
const INFO_CAMERA_TO_VIEWER: &[u8] = b"camseal pairing v1 camera to viewer";
const CAMERA_PROOF_CONTEXT: &[u8] = b"camseal pairing v1 camera proof";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{AccountSecret, KEM_X25519_HKDF_SHA256, Recipient};

    fn signed_list() -> Vec<u8> {
        let acc = AccountSecret::from_seed([7; 32]);
        RecipientList {
            version: 1,
            account: acc.public().ed25519,
            recipients: vec![Recipient {
                kem: KEM_X25519_HKDF_SHA256,
                public_key: acc.public().x25519.to_vec(),
                label: "account".into(),
            }],
        }
        .sign(&acc)
        .unwrap()
    }

    fn code(s: &str) -> SetupCode {
        SetupCode::parse(s).unwrap()
    }

    #[test]
    fn same_code_pairs_and_delivers_both_ways() {
        let list = signed_list();
        let camera = CameraSecret::from_seed([9; 32]);
        let (v, hello) = ViewerStart::start(&code("1234-5678"), list.clone()).unwrap();
        let (c, share) = ExpectViewerHello::new(code("12345678"))
            .receive(&hello)
            .unwrap();
        let (v, msg) = v.receive(&share).unwrap();
        let (got, answer) = c.receive(&msg).unwrap();
        assert_eq!(got, list);
        let result = answer.paired(&camera, &got).unwrap();
        assert_eq!(v.receive(&result).unwrap(), camera.public());
        // Neither the list nor the camera key crossed in the clear.
        for m in [&hello, &share, &msg, &result] {
            assert!(!m.windows(32).any(|w| w == camera.public().ed25519));
            assert!(!m.windows(list.len()).any(|w| w == &list[..]));
        }
    }

    #[test]
    fn a_wrong_code_fails_at_the_first_confirmation_and_nothing_keyed_is_sent() {
        let (v, hello) = ViewerStart::start(&code("00000001"), signed_list()).unwrap();
        let (_c, share) = ExpectViewerHello::new(code("00000002"))
            .receive(&hello)
            .unwrap();
        assert_eq!(v.receive(&share).err(), Some(PairingError::Failed));
    }

    #[test]
    fn a_camera_with_the_wrong_code_refuses_a_confirmation_computed_for_another_code() {
        // A viewer (or relay) that answers the camera with a confirmation and list of its own.
        let (v, hello) = ViewerStart::start(&code("11111111"), signed_list()).unwrap();
        let (c_right, share_right) = ExpectViewerHello::new(code("11111111"))
            .receive(&hello)
            .unwrap();
        let (_, msg) = v.receive(&share_right).unwrap();
        drop(c_right);
        let (c_wrong, _) = ExpectViewerHello::new(code("22222222"))
            .receive(&hello)
            .unwrap();
        assert_eq!(c_wrong.receive(&msg).err(), Some(PairingError::Failed));
    }

    #[test]
    fn refusal_reaches_the_viewer_and_a_flipped_bit_anywhere_fails() {
        let list = signed_list();
        let camera = CameraSecret::from_seed([9; 32]);
        let run = |flip: Option<(usize, usize)>| -> Result<CameraPublic, PairingError> {
            let (v, mut hello) = ViewerStart::start(&code("31415926"), list.clone())?;
            let f = |step: usize, m: &mut Vec<u8>| {
                if let Some((s, i)) = flip
                    && s == step
                {
                    let i = i % m.len();
                    m[i] ^= 1;
                }
            };
            f(0, &mut hello);
            let (c, mut share) = ExpectViewerHello::new(code("31415926")).receive(&hello)?;
            f(1, &mut share);
            let (v, mut msg) = v.receive(&share)?;
            f(2, &mut msg);
            let (got, answer) = c.receive(&msg)?;
            let mut result = answer.paired(&camera, &got)?;
            f(3, &mut result);
            v.receive(&result)
        };
        assert!(run(None).is_ok());
        for step in 0..4 {
            for i in [0, 5, 17, 32, 40, 64, 100] {
                assert!(run(Some((step, i))).is_err(), "step {step} byte {i}");
            }
        }
        let (v, hello) = ViewerStart::start(&code("31415926"), list.clone()).unwrap();
        let (c, share) = ExpectViewerHello::new(code("31415926"))
            .receive(&hello)
            .unwrap();
        let (v, msg) = v.receive(&share).unwrap();
        let (_, answer) = c.receive(&msg).unwrap();
        let refused = answer.refused("signed by another account").unwrap();
        assert_eq!(
            v.receive(&refused).err(),
            Some(PairingError::Refused("signed by another account".into()))
        );
    }

    #[test]
    fn malformed_and_oversized_input_is_an_error() {
        assert!(
            ExpectViewerHello::new(code("12345678"))
                .receive(b"")
                .is_err()
        );
        assert!(
            ExpectViewerHello::new(code("12345678"))
                .receive(&[0; HELLO_LEN])
                .is_err()
        );
        let (v, _) = ViewerStart::start(&code("12345678"), signed_list()).unwrap();
        assert!(v.receive(&[0; SHARE_LEN]).is_err());
        assert!(frame_len([0, 0, 1, 0], 255).is_err());
        assert_eq!(frame_len([0, 0, 0, 38], 38), Ok(38));
        assert!(ViewerStart::start(&code("12345678"), vec![1, 2, 3]).is_err());
    }

    #[test]
    fn setup_codes_are_8_digits() {
        for _ in 0..100 {
            let c = SetupCode::generate().unwrap();
            assert_eq!(c.as_str().len(), 8);
            assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(SetupCode::parse(c.as_str()).unwrap(), c);
        }
        for bad in ["", "1234567", "123456789", "1234567a", "12345678x"] {
            assert!(SetupCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(code(" 1234 5678 ").as_str(), "12345678");
        assert_eq!(format!("{:?}", code("12345678")), "SetupCode(<redacted>)");
    }
}
