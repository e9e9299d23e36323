//! A bounds-checked reader of the safetensors header, without an allocator.
//!
//! File layout (safetensors): `u64` little-endian header length `N`, then `N` bytes of JSON,
//! then the data region. The JSON is one object: each key is a tensor name mapped to
//! `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` (offsets relative to the
//! data region), plus an optional `"__metadata__"` object of string values.
//!
//! The scanner walks the JSON once and reports every tensor and metadata entry through a
//! callback; it accepts any valid JSON value where it does not care, rejects malformed JSON
//! with the byte offset, limits nesting depth, and never indexes out of bounds.

use super::PolicyError;

/// Deepest JSON nesting accepted.
const MAX_DEPTH: usize = 8;
/// Most dimensions of a tensor shape.
pub const MAX_RANK: usize = 4;

/// One tensor entry of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorEntry<'a> {
    /// Name, raw bytes between the quotes.
    pub name: &'a [u8],
    /// True when `dtype` is `"F32"`.
    pub f32: bool,
    /// Shape (first `rank` entries).
    pub shape: [usize; MAX_RANK],
    /// Number of dimensions.
    pub rank: usize,
    /// Byte range in the data region.
    pub begin: usize,
    /// End of the byte range.
    pub end: usize,
}

/// What the scanner found, one item at a time.
pub enum Item<'a> {
    /// A tensor.
    Tensor(TensorEntry<'a>),
    /// A `__metadata__` entry (raw key and value bytes).
    Meta(&'a [u8], &'a [u8]),
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn err(&self) -> PolicyError {
        PolicyError::HeaderSyntax { at: self.pos }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    /// Consume `c`, or say where the header is not what it should be.
    fn eat(&mut self, c: u8) -> Result<(), PolicyError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// A string; returns its raw content (escapes left as written).
    fn string(&mut self) -> Result<&'a [u8], PolicyError> {
        self.eat(b'"')?;
        let start = self.pos;
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err()),
                Some(b'"') => break,
                Some(b'\\') => self.pos += 2,
                Some(c) if *c < 0x20 => return Err(self.err()),
                Some(_) => self.pos += 1,
            }
        }
        let raw = self.s.get(start..self.pos).ok_or(self.err())?;
        self.pos += 1;
        Ok(raw)
    }

    /// A non-negative integer that fits `usize`.
    fn uint(&mut self) -> Result<usize, PolicyError> {
        self.ws();
        let start = self.pos;
        let mut v: usize = 0;
        while let Some(c @ b'0'..=b'9') = self.s.get(self.pos).copied() {
            v = v.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as usize)).ok_or(self.err())?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err());
        }
        Ok(v)
    }

    /// Skip any JSON value.
    fn skip(&mut self, depth: usize) -> Result<(), PolicyError> {
        if depth > MAX_DEPTH {
            return Err(PolicyError::HeaderDepth);
        }
        match self.peek().ok_or(self.err())? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                self.pos += 1;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.eat(b':')?;
                    self.skip(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err()),
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err()),
                    }
                }
            }
            _ => {
                // Number or literal: a run of their characters.
                let start = self.pos;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z') = self.s.get(self.pos) {
                    self.pos += 1;
                }
                if self.pos == start {
                    Err(self.err())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// `[uint, ...]` into `out`; returns the count.
    fn uint_array(&mut self, out: &mut [usize]) -> Result<usize, PolicyError> {
        self.eat(b'[')?;
        let mut n = 0;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        loop {
            let v = self.uint()?;
            *out.get_mut(n).ok_or(PolicyError::TensorRank)? = v;
            n += 1;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(n);
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn tensor(&mut self, name: &'a [u8]) -> Result<TensorEntry<'a>, PolicyError> {
        let mut t = TensorEntry { name, f32: false, shape: [0; MAX_RANK], rank: 0, begin: 0, end: 0 };
        let (mut has_dtype, mut has_shape, mut has_offsets) = (false, false, false);
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            return Err(PolicyError::TensorFields);
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            match key {
                b"dtype" => {
                    t.f32 = self.string()? == b"F32";
                    has_dtype = true;
                }
                b"shape" => {
                    t.rank = self.uint_array(&mut t.shape)?;
                    has_shape = true;
                }
                b"data_offsets" => {
                    let mut o = [0usize; 2];
                    if self.uint_array(&mut o).map_err(|_| PolicyError::TensorFields)? != 2 {
                        return Err(PolicyError::TensorFields);
                    }
                    (t.begin, t.end) = (o[0], o[1]);
                    has_offsets = true;
                }
                _ => self.skip(1)?,
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err()),
            }
        }
        if has_dtype && has_shape && has_offsets {
            Ok(t)
        } else {
            Err(PolicyError::TensorFields)
        }
    }
}

/// Walk the header JSON, calling `f` for every tensor and metadata entry.
pub fn scan<'a>(json: &'a [u8], mut f: impl FnMut(Item<'a>) -> Result<(), PolicyError>) -> Result<(), PolicyError> {
    let mut sc = Scanner { s: json, pos: 0 };
    sc.eat(b'{')?;
    if sc.peek() == Some(b'}') {
        sc.pos += 1;
    } else {
        loop {
            let key = sc.string()?;
            sc.eat(b':')?;
            if key == b"__metadata__" {
                sc.eat(b'{')?;
                if sc.peek() == Some(b'}') {
                    sc.pos += 1;
                } else {
                    loop {
                        let k = sc.string()?;
                        sc.eat(b':')?;
                        let v = sc.string()?;
                        f(Item::Meta(k, v))?;
                        match sc.peek() {
                            Some(b',') => sc.pos += 1,
                            Some(b'}') => {
                                sc.pos += 1;
                                break;
                            }
                            _ => return Err(sc.err()),
                        }
                    }
                }
            } else {
                let t = sc.tensor(key)?;
                f(Item::Tensor(t))?;
            }
            match sc.peek() {
                Some(b',') => sc.pos += 1,
                Some(b'}') => {
                    sc.pos += 1;
                    break;
                }
                _ => return Err(sc.err()),
            }
        }
    }
    // Only padding spaces may follow the object.
    if sc.peek().is_some() {
        return Err(sc.err());
    }
    Ok(())
}
