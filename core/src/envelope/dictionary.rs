//! Raw deflate primed with the preset dictionary of format 1.

use std::cell::Cell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{EnvelopeError, MAX_DECODED};

/// The preset deflate dictionary of format 1: the structure stream of SD-JWT
/// VC, disclosure and KB-JWT JSON as Vouch writes it (keys sorted, markers
/// in place of random tokens), plus template vocabulary. Never change it; a
/// new dictionary needs a new prefix.
pub const DICTIONARY: &[u8] = b"\
{\"employer\":\"\",\"employee\":\"\",\"title\":\"\",\"department\":\"\",\"start_date\":\"20\",\"end_date\":\"20\"}\
{\"insurer\":\"\",\"policyholder\":\"\",\"policy_number\":\"\",\"cover_type\":\"\",\"sum_insured\":\"\",\"currency\":\"EUR\"}\
https://vouch.example/vct/employment\"https://vouch.example/vct/insurance-policy\"\
[\xF7,\"student_name\",\"[\xF7,\"student_id\",\"[\xF7,\"programme\",\"Computer Science\"]\
[\xF7,\"degree\",\"Bachelor of Science\"][\xF7,\"degree\",\"Master of Science\"]\
[\xF7,\"award_date\",\"20[\xF7,\"gpa\",\"3.\
[\xF7,{\"code\":\"\",\"credits\":6,\"grade\":\"A\",\"term\":\"2024-S2\",\"title\":\"Introduction to \"}]\
[\xF7,{\"code\":\"\",\"credits\":5,\"grade\":\"B\",\"term\":\"2025-S1\",\"title\":\"Advanced \"}]\
{\"alg\":\"EdDSA\",\"typ\":\"kb+jwt\"}{\"aud\":\"https://\",\"iat\":17,\"nonce\":\"\",\"sd_hash\":\xFA}\
\"institution\":\"University of \",\"iss\":\"did:key:\xFB\x00\",\
\"status\":{\"status_list\":{\"idx\":,\"uri\":\"https://\"}},\"vct\":\"https://vouch.example/vct/transcript\"}\
{\"_sd\":[\xF5,\xF5,\xF5,\xF5,\xF5,\xF5],\"_sd_alg\":\"sha-256\",\"cnf\":{\"jwk\":{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\xF5}},\
\"courses\":[{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5}],\"exp\":17,\"iat\":17\
{\"alg\":\"EdDSA\",\"kid\":\"did:key:\xF6#\xFB\x00\",\"typ\":\"dc+sd-jwt\"}";
pub(super) fn deflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut c = Compress::new(Compression::best(), false);
    c.set_dictionary(DICTIONARY)
        .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
    let mut out = Vec::with_capacity(input.len() + 64);
    loop {
        let consumed = c.total_in() as usize;
        match c.compress_vec(&input[consumed..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) => out.reserve(out.capacity().max(64)),
            Err(e) => return Err(EnvelopeError::Inflate(e.to_string())),
        }
    }
}

thread_local! {
    /// This thread's raw inflater, reset for each envelope: making a new one
    /// allocates and clears its window, a twentieth of a whole decode.
    static INFLATER: Cell<Option<Decompress>> = const { Cell::new(None) };
}

/// Inflates at most [`MAX_DECODED`] bytes: the output buffer never grows
/// beyond one byte over the limit, which tells a stream that is too long
/// from one that just fits.
pub(super) fn inflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    // Taken out of the cell while in use; a fresh one if this thread has
    // none (first use, or the last use panicked).
    let mut d = INFLATER.take().map_or_else(
        || Decompress::new(false),
        |mut d| {
            d.reset(false);
            d
        },
    );
    let result = inflate_with(&mut d, input);
    INFLATER.set(Some(d));
    result
}

fn inflate_with(d: &mut Decompress, input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let too_large = || EnvelopeError::TooLarge {
        what: "inflated structure",
        max: MAX_DECODED,
    };
    let cap = MAX_DECODED + 1;
    d.set_dictionary(DICTIONARY)
        .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
    // A structure stream inflates to several times its deflated size.
    let mut out = Vec::with_capacity(input.len().saturating_mul(8).clamp(1024, cap));
    loop {
        // total_in never exceeds the input given.
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(rest, &mut out, FlushDecompress::Finish)
            .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
        if out.len() > MAX_DECODED {
            return Err(too_large());
        }
        if status == Status::StreamEnd {
            if usize::try_from(d.total_in()).ok() != Some(input.len()) {
                return Err(EnvelopeError::Inflate(
                    "trailing data after the deflate stream".into(),
                ));
            }
            return Ok(out);
        }
        if out.len() < out.capacity() {
            if (d.total_in(), d.total_out()) == before {
                return Err(EnvelopeError::Inflate("truncated deflate stream".into()));
            }
        } else {
            let grown = out.capacity().saturating_mul(2).min(cap);
            out.reserve_exact(grown - out.len());
        }
    }
}
