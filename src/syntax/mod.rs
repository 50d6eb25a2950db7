//! Stage `syntax`: the `.dosa` language front end (placeholder until the language lands).
