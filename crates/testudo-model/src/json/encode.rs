//! The tagged and simple formats: one walk over [`Output`], written straight into the buffer.
//!
//! The two formats differ only in whether type tags are written (and in how missing
//! documents and non-finite doubles appear), exactly as in the core, where the simple format
//! is the tagged walk with tags stripped.
//!
//! **Invariant:** writes exactly one JSON value per call and allocates nothing itself; in the
//! tagged format every object with a key starting with `@` — including a document's own
//! field list — is wrapped in `{"@object": ...}` so no driver mistakes it for a tag.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::write_str;
use crate::num::{write_i64, write_java_double, write_u64};
use crate::{DocOutput, Output, RefTarget, Time};

pub(super) fn write(value: &Output, tagged: bool, txn_time: Time, out: &mut Vec<u8>) {
    Encoder {
        out,
        tagged,
        txn_time,
    }
    .value(value);
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    tagged: bool,
    txn_time: Time,
}

impl Encoder<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn str(&mut self, s: &str) {
        write_str(s, self.out);
    }

    /// `"key":`
    fn key(&mut self, key: &str) {
        write_str(key, self.out);
        self.out.push(b':');
    }

    /// Opens `{"@tag":` in the tagged format; returns whether a matching [`Self::close_tag`]
    /// is owed.
    fn open_tag(&mut self, tag: &str) -> bool {
        if self.tagged {
            self.out.push(b'{');
            self.key(tag);
        }
        self.tagged
    }

    fn close_tag(&mut self, opened: bool) {
        if opened {
            self.out.push(b'}');
        }
    }

    /// A scalar whose text is a JSON string in both formats, tagged in the tagged one.
    fn tagged_text(&mut self, tag: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let opened = self.open_tag(tag);
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
        self.close_tag(opened);
    }

    fn time(&mut self, t: Time) {
        self.tagged_text("@time", |out| t.write_iso(out));
    }

    fn module(&mut self, name: &str) {
        let opened = self.open_tag("@mod");
        self.str(name);
        self.close_tag(opened);
    }

    fn value(&mut self, value: &Output) {
        match value {
            Output::Null => self.raw(b"null"),
            Output::Bool(true) => self.raw(b"true"),
            Output::Bool(false) => self.raw(b"false"),
            Output::Int(n) => self.integer("@int", i64::from(*n)),
            Output::Long(n) => self.integer("@long", *n),
            Output::Double(x) => self.double(*x),
            Output::String(s) | Output::Function(s) => self.str(s),
            Output::Bytes(bytes) => self.tagged_text("@bytes", |out| {
                let start = out.len();
                out.resize(
                    start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
                    0,
                );
                let written = STANDARD.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
                out.truncate(start + written);
            }),
            Output::Time(t) => self.time(*t),
            Output::TxnTime => self.time(self.txn_time),
            Output::Date(d) => self.tagged_text("@date", |out| d.write_iso(out)),
            Output::Id(id) => {
                self.out.push(b'"');
                write_u64(*id, self.out);
                self.out.push(b'"');
            }
            Output::Array(items) => {
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(item);
                }
                self.out.push(b']');
            }
            Output::Object(fields) => {
                let opened = self.tagged && needs_object_tag(fields) && self.open_tag("@object");
                self.out.push(b'{');
                self.fields(fields, true);
                self.out.push(b'}');
                self.close_tag(opened);
            }
            Output::Module(name) => self.module(name),
            Output::Doc(doc) => {
                let opened = self.open_tag("@doc");
                self.doc(doc);
                self.close_tag(opened);
            }
            Output::Ref(target) => {
                let opened = self.open_tag("@ref");
                self.out.push(b'{');
                self.target(target);
                self.out.push(b'}');
                self.close_tag(opened);
            }
            Output::NullDoc { target, cause } => {
                if !self.tagged {
                    self.raw(b"null");
                    return;
                }
                self.open_tag("@ref");
                self.out.push(b'{');
                self.target(target);
                self.raw(b",\"exists\":false,");
                self.key("cause");
                self.str(cause.as_str());
                self.raw(b"}}");
            }
            Output::SetPage { data, after } => {
                let opened = self.open_tag("@set");
                self.out.push(b'{');
                self.key("data");
                self.out.push(b'[');
                for (i, item) in data.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(item);
                }
                self.out.push(b']');
                if let Some(after) = after {
                    self.out.push(b',');
                    self.key("after");
                    self.str(after);
                }
                self.out.push(b'}');
                self.close_tag(opened);
            }
            Output::SetCursor(cursor) => {
                let opened = self.open_tag("@set");
                self.str(cursor);
                self.close_tag(opened);
            }
            Output::Stream(token) => {
                let opened = self.open_tag("@stream");
                self.str(token);
                self.close_tag(opened);
            }
        }
    }

    fn integer(&mut self, tag: &str, n: i64) {
        if self.tagged {
            self.tagged_text(tag, |out| write_i64(n, out));
        } else {
            write_i64(n, self.out);
        }
    }

    fn double(&mut self, x: f64) {
        if self.tagged || !x.is_finite() {
            // Simple JSON has no literal for NaN or the infinities: they go as strings.
            self.tagged_text("@double", |out| write_java_double(x, out));
        } else {
            write_java_double(x, self.out);
        }
    }

    /// `"k":v,...` without braces; `first` says whether no field precedes them.
    fn fields(&mut self, fields: &[(String, Output)], mut first: bool) {
        for (k, v) in fields {
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.key(k);
            self.value(v);
        }
    }

    /// `"id":"1","coll":C` or `"name":"N","coll":C`, without braces.
    fn target(&mut self, target: &RefTarget) {
        match target {
            RefTarget::Id { coll, id } => {
                self.raw(b"\"id\":\"");
                write_u64(*id, self.out);
                self.raw(b"\",");
                self.key("coll");
                self.module(coll);
            }
            RefTarget::Named { coll, name } => {
                self.key("name");
                self.str(name);
                self.out.push(b',');
                self.key("coll");
                self.module(coll);
            }
        }
    }

    /// A document's fields: identity, `ts`, then its own fields, wrapped like any other
    /// object when one of its keys starts with `@`.
    fn doc(&mut self, doc: &DocOutput) {
        let opened = self.tagged && needs_object_tag(&doc.fields) && self.open_tag("@object");
        self.out.push(b'{');
        self.target(&doc.target);
        self.out.push(b',');
        self.key("ts");
        self.time(doc.ts.map_or(self.txn_time, |ts| ts.to_time()));
        self.fields(&doc.fields, false);
        self.out.push(b'}');
        self.close_tag(opened);
    }
}

fn needs_object_tag(fields: &[(String, Output)]) -> bool {
    fields.iter().any(|(k, _)| k.starts_with('@'))
}
