//! Every file of the ics-collective corpus (real-world and deliberately broken iCalendar from
//! python's icalendar project) goes through parse, select, rewrite and build_update without a
//! panic, and every file that parses serializes back byte for byte, with no normalisation.

mod common;

use common::{corpus_dir, pipeline, Outcome};

#[test]
fn every_corpus_file_gets_a_result_a_skip_or_a_typed_error() {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    files.sort();
    assert!(
        files.len() > 150,
        "expected the whole corpus, found {} files",
        files.len()
    );
    let (mut rewritten, mut unchanged, mut skipped, mut refused) = (0, 0, 0, 0);
    for path in &files {
        let bytes = std::fs::read(path).expect("readable corpus file");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let ics = match mms_ical::utf8(&bytes) {
            Ok(ics) => ics,
            Err(e) => {
                println!("{name}: refused: {e}");
                refused += 1;
                continue;
            }
        };
        // The corpus's own organizer, so that the migrate path runs where there is one.
        let organizer = ics
            .lines()
            .find(|l| l.to_ascii_uppercase().starts_with("ORGANIZER"))
            .and_then(|l| l.rsplit(':').next())
            .unwrap_or("nobody@example.com")
            .trim();
        match pipeline(ics, organizer) {
            Outcome::Rewritten => rewritten += 1,
            Outcome::Unchanged => unchanged += 1,
            Outcome::Skipped(reason) => {
                println!("{name}: skipped: {reason}");
                skipped += 1
            }
            Outcome::Refused(e) => {
                println!("{name}: refused: {e}");
                refused += 1
            }
        }
    }
    println!("{} files: {rewritten} rewritten, {unchanged} unchanged, {skipped} skipped, {refused} refused", files.len());
    assert_eq!(rewritten + unchanged + skipped + refused, files.len());
}
