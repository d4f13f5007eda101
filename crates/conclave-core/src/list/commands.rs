//! Reading a list command out of a message: words in the Subject or in the
//! first lines of the body (`subscribe`, `unsubscribe`, `help`, `key`,
//! `my key`, `key change`, `key sign`), Schleuder's `x-…:` keywords, and
//! the confirmation tokens the list sends out, wherever they are quoted.
//! Pure: text in, a command out.

/// What a message to the request address asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// To join (a key comes with it).
    Subscribe,
    /// To leave.
    Unsubscribe,
    /// How to use the list.
    Help,
    /// The list's public key.
    ListKey,
    /// Which key the sender is subscribed with.
    MyKey,
    /// To change the sender's key (the new key comes with it).
    KeyChange,
    /// To add the sender's certification of the list key.
    KeySign,
    /// A confirmation token, sent back.
    Confirm(String),
}

impl Command {
    /// The command as a subscriber writes it.
    pub fn word(&self) -> &'static str {
        match self {
            Command::Subscribe => "subscribe",
            Command::Unsubscribe => "unsubscribe",
            Command::Help => "help",
            Command::ListKey => "key",
            Command::MyKey => "my key",
            Command::KeyChange => "key change",
            Command::KeySign => "key sign",
            Command::Confirm(_) => "confirm",
        }
    }
}

/// What a token starts with.
pub const TOKEN_PREFIX: &str = "confirm-";
/// How many hex digits follow the prefix.
pub const TOKEN_HEX: usize = 32;

/// How many lines of the body may hold the command (after blank lines,
/// quoted lines and the Subject).
const BODY_LINES: usize = 3;

/// Reads the command of a message from its subject and text. A token
/// anywhere (quoted in a reply, say) makes it a confirmation; otherwise
/// the subject, then the first lines of the body, are read for a command.
pub fn parse(subject: Option<&str>, text: &str) -> Option<Command> {
    if let Some(token) = subject.and_then(find_token).or_else(|| find_token(text)) {
        return Some(Command::Confirm(token));
    }
    if let Some(c) = subject.and_then(|s| command_in(strip_reply_prefixes(s))) {
        return Some(c);
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        // A signed message's armour header is not a line of the text.
        .filter(|l| !l.starts_with("-----BEGIN PGP") && !l.starts_with("Hash:"))
        .take(BODY_LINES)
        .find_map(command_in)
}

/// The first token in `text`, lowercased.
pub fn find_token(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower.get(from..).and_then(|t| t.find(TOKEN_PREFIX)) {
        let start = from + at + TOKEN_PREFIX.len();
        let hex: String = lower
            .get(start..)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if hex.len() == TOKEN_HEX {
            return Some(format!("{TOKEN_PREFIX}{hex}"));
        }
        from = start;
    }
    None
}

/// `Re:`, `Fwd:`, `AW:` and `[list]` tags taken off a subject.
fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fwd:", "fw:", "aw:", "wg:", "sv:", "antw:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len())
            .or_else(|| {
                s.starts_with('[')
                    .then(|| s.find(']').map(|i| i + 1))
                    .flatten()
            });
        match cut {
            Some(n) => s = s.get(n..).unwrap_or_default().trim_start(),
            None => return s,
        }
    }
}

/// The command a line is, if it is one: its words, case-insensitive,
/// punctuation at the end ignored; Schleuder's `x-…:` keywords with or
/// without their colon and arguments.
fn command_in(line: &str) -> Option<Command> {
    let lower = line.trim().to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches(['.', '!', ':', ',']))
        .collect();
    let first = *words.first()?;
    if let Some(keyword) = first.strip_prefix("x-") {
        return match keyword {
            "subscribe" => Some(Command::Subscribe),
            "unsubscribe" => Some(Command::Unsubscribe),
            "help" => Some(Command::Help),
            "get-key" | "list-key" | "get-list-key" => Some(Command::ListKey),
            "my-key" | "list-keys" => Some(Command::MyKey),
            "add-key" | "change-key" | "key-change" => Some(Command::KeyChange),
            "sign-list-key" | "key-sign" => Some(Command::KeySign),
            _ => None,
        };
    }
    // A command is a line of one or two words; anything longer is prose.
    if words.len() > 2 {
        return None;
    }
    match (first, words.get(1).copied()) {
        ("subscribe" | "join", None) => Some(Command::Subscribe),
        ("unsubscribe" | "leave", None) => Some(Command::Unsubscribe),
        ("help" | "?", None) => Some(Command::Help),
        ("key", None) | ("list", Some("key")) | ("get", Some("key")) => Some(Command::ListKey),
        ("my", Some("key")) => Some(Command::MyKey),
        ("key", Some("change")) | ("change", Some("key")) => Some(Command::KeyChange),
        ("key", Some("sign")) | ("sign", Some("key")) => Some(Command::KeySign),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "confirm-0123456789abcdef0123456789abcdef";

    #[test]
    fn commands_come_from_the_subject_or_the_first_lines() {
        assert_eq!(parse(Some("subscribe"), ""), Some(Command::Subscribe));
        assert_eq!(
            parse(Some("Re: [Garden] Unsubscribe"), ""),
            Some(Command::Unsubscribe)
        );
        assert_eq!(parse(Some("..."), "\r\nhelp\r\n"), Some(Command::Help));
        assert_eq!(
            parse(None, "Key change\nhere is my new key"),
            Some(Command::KeyChange)
        );
        assert_eq!(parse(Some("hello"), "my key"), Some(Command::MyKey));
        assert_eq!(parse(Some(""), "key sign"), Some(Command::KeySign));
        assert_eq!(parse(Some("key"), ""), Some(Command::ListKey));
        // Prose is not a command, nor a command after the first lines.
        assert_eq!(parse(Some("I want to subscribe please"), ""), None);
        assert_eq!(parse(None, "one\ntwo\nthree\nsubscribe"), None);
        // Quoted lines are not the sender's command.
        assert_eq!(parse(None, "> unsubscribe\n"), None);
    }

    #[test]
    fn schleuder_keywords_are_understood() {
        assert_eq!(
            parse(None, "X-SUBSCRIBE: alice@example.org"),
            Some(Command::Subscribe)
        );
        assert_eq!(parse(None, "x-unsubscribe:"), Some(Command::Unsubscribe));
        assert_eq!(parse(Some("x-get-key"), ""), Some(Command::ListKey));
        assert_eq!(parse(None, "x-unknown:"), None);
    }

    #[test]
    fn a_token_anywhere_is_a_confirmation() {
        let quoted = format!(
            "Thanks!\n\n> Reply to confirm:\n> {}\n",
            TOKEN.to_uppercase()
        );
        assert_eq!(
            parse(Some("Re: Confirm"), &quoted),
            Some(Command::Confirm(TOKEN.into()))
        );
        assert_eq!(
            parse(Some(&format!("Re: subscribe ({TOKEN})")), "unsubscribe"),
            Some(Command::Confirm(TOKEN.into()))
        );
        // Too short is not a token.
        assert_eq!(find_token("confirm-0123"), None);
        assert_eq!(
            find_token("confirm-0123456789abcdef0123456789abcdef0"),
            None
        );
        assert_eq!(
            find_token(&format!("confirm-x {TOKEN}.")),
            Some(TOKEN.into())
        );
    }
}
