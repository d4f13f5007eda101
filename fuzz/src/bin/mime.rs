//! Fuzz target: MIME intake. An incoming message is parsed as it arrived
//! (`mime::parse::incoming`), and the same bytes are picked apart as
//! decrypted content would be (`mime::parse::content`), both as a MIME
//! entity and as inline text, with what those read from it.

use conclave_core::mime::parse;

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        if let Ok(incoming) = parse::incoming(data) {
            if let parse::Payload::PgpMime(inner) | parse::Payload::Inline(inner) =
                &incoming.payload
            {
                let _ = parse::content(inner, true);
            }
        }
        for pgp_mime in [true, false] {
            let inside = parse::content(data, pgp_mime);
            if let parse::Content::MimeSigned { entity, .. } | parse::Content::Mime { entity } =
                &inside.content
            {
                let _ = parse::first_text(entity);
                let _ = parse::attached_keys(entity);
            }
        }
    });
}
