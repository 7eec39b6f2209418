//! The worker protocol's framing: one message is a kind byte, a JSON header
//! and the raw bytes of the arrays the header lists (`docs/WORKER.md`).
//!
//! Arrays travel as bytes beside the JSON rather than inside it, because an
//! Atari frame is 100 kB and a step's observation as many again: encoding
//! them as JSON numbers would cost more than the step. Every length is checked
//! against [`MAX_MESSAGE`] before anything is allocated, so a broken or
//! hostile peer costs at most that much memory.

use std::io::{self, Read, Write};

use serde_json::{Map, Value, json};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// Why a worker whose `hello` says `header` cannot be spoken to, if it
/// cannot: another protocol version, or none.
pub fn version_mismatch(header: &Map<String, Value>) -> Option<String> {
    let version = header.get("protocol").and_then(Value::as_u64);
    (version != Some(PROTOCOL_VERSION)).then(|| {
        format!(
            "the worker speaks protocol {}, this server {PROTOCOL_VERSION}: install the tandem package of the server's version",
            version.map_or("(none)".to_string(), |v| v.to_string())
        )
    })
}

/// The largest message either side accepts, in bytes after the length field.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The largest JSON header. Parsed JSON takes up to about 16 times its text
/// in memory, so the header has a tighter limit than the arrays; an Atari
/// `made` (every bound of its observation space listed) is about 1.2 MB.
pub const MAX_HEADER: usize = 8 * 1024 * 1024;

/// The message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hello = 1,
    Welcome = 2,
    Make = 10,
    Made = 11,
    Reset = 12,
    ResetDone = 13,
    Step = 14,
    StepDone = 15,
    Render = 16,
    Rendered = 17,
    Close = 18,
    Closed = 19,
    Policy = 20,
    PolicyReady = 21,
    PolicyReset = 22,
    PolicyResetDone = 23,
    Act = 24,
    Acted = 25,
    Observe = 26,
    Observed = 27,
    Error = 127,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            10 => Kind::Make,
            11 => Kind::Made,
            12 => Kind::Reset,
            13 => Kind::ResetDone,
            14 => Kind::Step,
            15 => Kind::StepDone,
            16 => Kind::Render,
            17 => Kind::Rendered,
            18 => Kind::Close,
            19 => Kind::Closed,
            20 => Kind::Policy,
            21 => Kind::PolicyReady,
            22 => Kind::PolicyReset,
            23 => Kind::PolicyResetDone,
            24 => Kind::Act,
            25 => Kind::Acted,
            26 => Kind::Observe,
            27 => Kind::Observed,
            127 => Kind::Error,
            _ => return None,
        })
    }
}

/// Element types an array may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    F32,
    F64,
}

impl Dtype {
    pub fn from_name(name: &str) -> Option<Dtype> {
        Some(match name {
            "bool" => Dtype::Bool,
            "uint8" => Dtype::U8,
            "int8" => Dtype::I8,
            "int16" => Dtype::I16,
            "int32" => Dtype::I32,
            "int64" => Dtype::I64,
            "uint16" => Dtype::U16,
            "uint32" => Dtype::U32,
            "float32" => Dtype::F32,
            "float64" => Dtype::F64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

/// One array of a message: its type, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// One message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub kind: Kind,
    /// The header, without its `"arrays"` list (that is rebuilt from `arrays`).
    pub header: Map<String, Value>,
    pub arrays: Vec<Array>,
}

/// Why a stream did not hold a message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the stream ended")]
    Ended,
    #[error("reading failed: {0}")]
    Io(#[from] io::Error),
    #[error("malformed message: {0}")]
    Malformed(String),
}

fn malformed(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(what.into())
}

impl Message {
    /// A message without arrays.
    pub fn new(kind: Kind, header: Value) -> Message {
        let header = match header {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Message {
            kind,
            header,
            arrays: Vec::new(),
        }
    }

    /// A message carrying `arrays`, which `header` refers to as `{"$array": i}`.
    pub fn with_arrays(kind: Kind, header: Value, arrays: Vec<Array>) -> Message {
        Message {
            arrays,
            ..Message::new(kind, header)
        }
    }

    /// The array a header value refers to (`{"$array": i}`).
    pub fn array(&self, reference: &Value) -> Option<&Array> {
        let index = reference.get("$array")?.as_u64()?;
        self.arrays.get(usize::try_from(index).ok()?)
    }

    /// Writes the message as one buffer, so a reader never sees half of it.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut header = self.header.clone();
        if !self.arrays.is_empty() {
            let listed: Vec<Value> = self
                .arrays
                .iter()
                .map(|a| json!({"dtype": a.dtype.name(), "shape": a.shape}))
                .collect();
            header.insert("arrays".into(), Value::Array(listed));
        }
        let header = serde_json::to_vec(&Value::Object(header))?;
        let payload: usize = self.arrays.iter().map(|a| a.bytes.len()).sum();
        let length = 1 + 4 + header.len() + payload;
        if length > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a message of {length} bytes is over the protocol's limit"),
            ));
        }
        let mut buffer = Vec::with_capacity(4 + length);
        buffer.extend_from_slice(&(length as u32).to_le_bytes());
        buffer.push(self.kind as u8);
        buffer.extend_from_slice(&(header.len() as u32).to_le_bytes());
        buffer.extend_from_slice(&header);
        for array in &self.arrays {
            buffer.extend_from_slice(&array.bytes);
        }
        out.write_all(&buffer)?;
        out.flush()
    }

    /// Reads one message; [`ProtocolError::Ended`] when the stream ends
    /// cleanly between messages. Each array is read straight into its own
    /// buffer: a frame is copied once, from the pipe.
    pub fn read_from(input: &mut impl Read) -> Result<Message, ProtocolError> {
        Message::read_limited(input, MAX_MESSAGE)
    }

    /// [`Message::read_from`] with a lower limit on the message's size,
    /// checked before anything is allocated.
    pub fn read_limited(input: &mut impl Read, max: usize) -> Result<Message, ProtocolError> {
        let max = max.min(MAX_MESSAGE);
        let mut length = [0u8; 4];
        match input.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ProtocolError::Ended),
            Err(e) => return Err(e.into()),
        }
        let length = u32::from_le_bytes(length) as usize;
        if !(5..=max).contains(&length) {
            return Err(malformed(format!(
                "a message length of {length} bytes (at most {max})"
            )));
        }
        let mut start = [0u8; 5];
        input.read_exact(&mut start)?;
        let kind = Kind::from_byte(start[0])
            .ok_or_else(|| malformed(format!("unknown message kind {}", start[0])))?;
        let header_length = u32::from_le_bytes([start[1], start[2], start[3], start[4]]) as usize;
        let mut left = length - 5;
        if header_length > left {
            return Err(malformed("the header is longer than the message"));
        }
        if header_length > MAX_HEADER {
            return Err(malformed(format!(
                "a header of {header_length} bytes (at most {MAX_HEADER})"
            )));
        }
        let mut header = vec![0u8; header_length];
        input.read_exact(&mut header)?;
        left -= header_length;
        let header: Value = serde_json::from_slice(&header)
            .map_err(|e| malformed(format!("the header is not JSON: {e}")))?;
        let Value::Object(mut header) = header else {
            return Err(malformed("the header is not a JSON object"));
        };
        let listed = match header.remove("arrays") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(listed)) => listed,
            Some(_) => return Err(malformed("\"arrays\" is not a list")),
        };
        let mut arrays = Vec::with_capacity(listed.len());
        for entry in &listed {
            let dtype = entry
                .get("dtype")
                .and_then(Value::as_str)
                .and_then(Dtype::from_name)
                .ok_or_else(|| malformed("an array has no known dtype"))?;
            let shape: Vec<usize> = entry
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|dims| {
                    dims.iter()
                        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                        .collect()
                })
                .ok_or_else(|| malformed("an array has no valid shape"))?;
            let size = shape
                .iter()
                .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
                .filter(|&n| n <= left)
                .ok_or_else(|| malformed("an array is larger than the message"))?;
            let mut bytes = vec![0u8; size];
            input.read_exact(&mut bytes)?;
            left -= size;
            arrays.push(Array {
                dtype,
                shape,
                bytes,
            });
        }
        if left != 0 {
            return Err(malformed(format!("{left} bytes after the arrays")));
        }
        Ok(Message {
            kind,
            header,
            arrays,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: &Message) -> Message {
        let mut bytes = Vec::new();
        message
            .write_to(&mut bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        Message::read_from(&mut bytes.as_slice()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn messages_with_arrays_round_trip() {
        let mut message = Message::new(
            Kind::StepDone,
            json!({"rewards": [1.0], "frame": {"$array": 1}}),
        );
        message.arrays.push(Array {
            dtype: Dtype::F32,
            shape: vec![4],
            bytes: (0..16).collect(),
        });
        message.arrays.push(Array {
            dtype: Dtype::U8,
            shape: vec![2, 3, 3],
            bytes: vec![7; 18],
        });
        let back = round_trip(&message);
        assert_eq!(back, message);
        let frame = back.header.get("frame").and_then(|f| back.array(f));
        assert_eq!(frame.map(|a| a.shape.clone()), Some(vec![2, 3, 3]));
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        let cases: Vec<Vec<u8>> = vec![
            vec![1, 0, 0, 0, 1],                    // too short for a header length
            vec![255, 255, 255, 255],               // over the limit
            vec![6, 0, 0, 0, 99, 1, 0, 0, 0, b'{'], // unknown kind
            vec![6, 0, 0, 0, 1, 9, 0, 0, 0, b'{'],  // header past the end
            vec![6, 0, 0, 0, 1, 1, 0, 0, 0, b'['],  // header not JSON
        ];
        for bytes in cases {
            assert!(
                Message::read_from(&mut bytes.as_slice()).is_err(),
                "{bytes:?}"
            );
        }
        let mut lying = Message::new(Kind::Rendered, json!({}));
        lying.arrays.push(Array {
            dtype: Dtype::U8,
            shape: vec![4],
            bytes: vec![0; 4],
        });
        let mut bytes = Vec::new();
        lying.write_to(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
        bytes.truncate(bytes.len() - 1);
        let new_length = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&new_length.to_le_bytes());
        assert!(Message::read_from(&mut bytes.as_slice()).is_err());
        assert!(matches!(
            Message::read_from(&mut [].as_slice()),
            Err(ProtocolError::Ended)
        ));
    }
}
