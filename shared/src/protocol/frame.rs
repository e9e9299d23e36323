//! Frames: a sequence number, a postcard message and a CRC-32, COBS-encoded and ended by
//! `0x00`; and [`FrameAccumulator`], which cuts a byte stream into frames.
//!
//! Nothing here panics or allocates: bad input of any kind (garbage, an overlong frame, a
//! flipped bit, an unknown message) comes back as a [`FrameError`] value, and the
//! accumulator carries on with the bytes after the next delimiter.

use super::{MAX_INNER, MAX_MESSAGE};
use crc::{Crc, CRC_32_ISO_HDLC};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// CRC-32/ISO-HDLC (the zlib / Ethernet CRC-32).
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
/// Sequence number bytes.
const SEQ_LEN: usize = 2;
/// CRC bytes.
const CRC_LEN: usize = 4;

/// Everything that can go wrong making or reading a frame, named by phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// The message encodes to more than [`MAX_MESSAGE`] bytes.
    EncodeMessageTooLarge,
    /// The output buffer cannot hold the encoded frame.
    EncodeBufferFull,
    /// More bytes than the accumulator holds arrived without a delimiter; they are
    /// dropped up to the next `0x00`.
    DecodeOverfull {
        /// The accumulator's capacity.
        capacity: usize,
    },
    /// The bytes between two delimiters are not valid COBS.
    DecodeCobs,
    /// Too short to hold a sequence number and a CRC.
    DecodeTooShort {
        /// Decoded length.
        len: usize,
    },
    /// The CRC does not match the content.
    DecodeCrc {
        /// CRC of the received content.
        computed: u32,
        /// CRC carried by the frame.
        received: u32,
    },
    /// The CRC matches but the content is not a message of the expected type.
    DecodeMessage,
    /// A message decoded but bytes were left over before the CRC.
    DecodeTrailing {
        /// Leftover bytes.
        extra: usize,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            FrameError::EncodeMessageTooLarge => {
                write!(f, "message larger than {MAX_MESSAGE} bytes")
            }
            FrameError::EncodeBufferFull => write!(f, "output buffer too small for the frame"),
            FrameError::DecodeOverfull { capacity } => {
                write!(f, "frame longer than {capacity} bytes dropped")
            }
            FrameError::DecodeCobs => write!(f, "invalid COBS encoding"),
            FrameError::DecodeTooShort { len } => write!(f, "frame of {len} bytes is too short"),
            FrameError::DecodeCrc { computed, received } => {
                write!(f, "CRC mismatch: frame carries {received:#010x}, content gives {computed:#010x}")
            }
            FrameError::DecodeMessage => write!(f, "CRC ok but not a known message"),
            FrameError::DecodeTrailing { extra } => {
                write!(f, "{extra} bytes left after the message")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<M> {
    /// The sender's sequence number.
    pub seq: u16,
    /// The message.
    pub msg: M,
}

/// [`encode_frame`] into a new vector (hosts and their tests).
#[cfg(feature = "std")]
pub fn encode_frame_vec<M: Serialize>(seq: u16, msg: &M) -> Result<std::vec::Vec<u8>, FrameError> {
    let mut buf = [0u8; super::MAX_FRAME];
    let n = encode_frame(seq, msg, &mut buf)?;
    Ok(buf[..n].to_vec())
}

/// Encode `msg` with sequence number `seq` into `out`, delimiter included; returns the
/// number of bytes written. `out` needs at most [`super::MAX_FRAME`] bytes.
pub fn encode_frame<M: Serialize>(seq: u16, msg: &M, out: &mut [u8]) -> Result<usize, FrameError> {
    let mut inner = [0u8; MAX_INNER];
    let (head, rest) = inner.split_at_mut(SEQ_LEN);
    head.copy_from_slice(&seq.to_le_bytes());
    let body = rest.get_mut(..MAX_MESSAGE).unwrap_or_default();
    let n = postcard::to_slice(msg, body).map_err(|_| FrameError::EncodeMessageTooLarge)?.len();
    let content = SEQ_LEN + n;
    let crc = CRC.checksum(inner.get(..content).unwrap_or_default());
    inner
        .get_mut(content..content + CRC_LEN)
        .ok_or(FrameError::EncodeMessageTooLarge)?
        .copy_from_slice(&crc.to_le_bytes());
    let inner = inner.get(..content + CRC_LEN).ok_or(FrameError::EncodeMessageTooLarge)?;
    let m = cobs::try_encode(inner, out).map_err(|_| FrameError::EncodeBufferFull)?;
    *out.get_mut(m).ok_or(FrameError::EncodeBufferFull)? = 0;
    Ok(m + 1)
}

/// Decode the COBS bytes of one frame (between delimiters, no `0x00`), in place.
pub fn decode_frame<M: DeserializeOwned>(encoded: &mut [u8]) -> Result<Frame<M>, FrameError> {
    if encoded.is_empty() {
        return Err(FrameError::DecodeTooShort { len: 0 });
    }
    let n = cobs::decode_in_place(encoded).map_err(|_| FrameError::DecodeCobs)?;
    let data = encoded.get(..n).ok_or(FrameError::DecodeCobs)?;
    if n < SEQ_LEN + CRC_LEN {
        return Err(FrameError::DecodeTooShort { len: n });
    }
    let (content, tail) = data.split_at(n - CRC_LEN);
    let received = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = CRC.checksum(content);
    if computed != received {
        return Err(FrameError::DecodeCrc { computed, received });
    }
    let (seq, body) = content.split_at(SEQ_LEN);
    let seq = u16::from_le_bytes([seq[0], seq[1]]);
    let (msg, rest) = postcard::take_from_bytes::<M>(body).map_err(|_| FrameError::DecodeMessage)?;
    if !rest.is_empty() {
        return Err(FrameError::DecodeTrailing { extra: rest.len() });
    }
    Ok(Frame { seq, msg })
}

/// What feeding bytes to a [`FrameAccumulator`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'a, M> {
    /// Every byte was consumed; no frame ended.
    Consumed,
    /// A frame ended and decoded; `remaining` are the bytes after its delimiter.
    Frame {
        /// The frame.
        frame: Frame<M>,
        /// Unconsumed input.
        remaining: &'a [u8],
    },
    /// A frame ended (or overflowed) and was refused; `remaining` are the bytes after it.
    Error {
        /// Why.
        error: FrameError,
        /// Unconsumed input.
        remaining: &'a [u8],
    },
}

/// Cuts a byte stream into frames of at most `N` encoded bytes (delimiter excluded).
///
/// Empty frames (two delimiters in a row) are skipped silently: a sender may emit a lone
/// `0x00` to end whatever partial frame the receiver holds.
#[derive(Clone, Debug)]
pub struct FrameAccumulator<const N: usize = { super::MAX_FRAME }> {
    buf: [u8; N],
    len: usize,
    dropping: bool,
}

impl<const N: usize> Default for FrameAccumulator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameAccumulator<N> {
    /// An empty accumulator.
    pub const fn new() -> Self {
        FrameAccumulator { buf: [0; N], len: 0, dropping: false }
    }

    /// Forget any partial frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.dropping = false;
    }

    /// Bytes of the partial frame held.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Take one byte; returns a result when it ended (or overflowed) a frame.
    pub fn push<M: DeserializeOwned>(&mut self, byte: u8) -> Option<Result<Frame<M>, FrameError>> {
        if byte == 0 {
            let len = core::mem::replace(&mut self.len, 0);
            if core::mem::replace(&mut self.dropping, false) || len == 0 {
                return None;
            }
            return Some(match self.buf.get_mut(..len) {
                Some(encoded) => decode_frame(encoded),
                None => Err(FrameError::DecodeOverfull { capacity: N }),
            });
        }
        if self.dropping {
            return None;
        }
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
                None
            }
            None => {
                self.len = 0;
                self.dropping = true;
                Some(Err(FrameError::DecodeOverfull { capacity: N }))
            }
        }
    }

    /// Take bytes until a frame ends (or overflows), returning it and the unread rest.
    pub fn feed<'a, M: DeserializeOwned>(&mut self, input: &'a [u8]) -> Feed<'a, M> {
        for (i, &b) in input.iter().enumerate() {
            if let Some(result) = self.push::<M>(b) {
                let remaining = input.get(i + 1..).unwrap_or_default();
                return match result {
                    Ok(frame) => Feed::Frame { frame, remaining },
                    Err(error) => Feed::Error { error, remaining },
                };
            }
        }
        Feed::Consumed
    }
}
