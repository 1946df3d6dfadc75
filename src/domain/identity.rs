//! Identifiers of people and organisations, validated before anything is sent to a provider or
//! stored: the resident ID number (GB 11643), the unified social credit code (GB 32100) and
//! personal names. Each refusal names the rule, so the person can correct the right thing.

use time::Date;

/// Why an identifier was refused: a stable rule code and a message in Chinese.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        rule,
        message: message.into(),
    }
}

/// A resident identity card number in its 18-character form.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

impl std::fmt::Debug for IdNumber {
    // Never print the whole number by accident (logs, panics, test output).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The GB 11643 check character of the first 17 digits.
pub fn id_check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

impl IdNumber {
    /// Validates: 18 characters (the old 15-digit form is refused), digits with a final check
    /// character (`x` is read as `X`), a real birth date not after `today`, and the checksum.
    pub fn parse(s: &str, today: Date) -> Result<IdNumber, Refusal> {
        let s = s.trim().to_ascii_uppercase();
        if s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(
                "old_form",
                "15 位旧身份证号码已停止使用，请填写 18 位号码。",
            ));
        }
        if s.chars().count() != 18 {
            return Err(refuse("length", "身份证号码应为 18 位。"));
        }
        let (body, check) = s.split_at(17);
        if !body.bytes().all(|b| b.is_ascii_digit())
            || !check.bytes().all(|b| b.is_ascii_digit() || b == b'X')
        {
            return Err(refuse(
                "characters",
                "身份证号码只能由数字和末位的 X 组成。",
            ));
        }
        if body.starts_with("000000") {
            return Err(refuse("region", "身份证号码的地区码无效。"));
        }
        let birth = &body[6..14];
        let year: i32 = birth[..4].parse().unwrap_or(0);
        let month: u8 = birth[4..6].parse().unwrap_or(0);
        let day: u8 = birth[6..8].parse().unwrap_or(0);
        let date = time::Month::try_from(month)
            .ok()
            .and_then(|m| Date::from_calendar_date(year, m, day).ok())
            .filter(|_| year >= 1900);
        let Some(date) = date else {
            return Err(refuse("date", "身份证号码中的出生日期不是有效日期。"));
        };
        if date > today {
            return Err(refuse("future_date", "身份证号码中的出生日期晚于今天。"));
        }
        if id_check_character(body) != check.chars().next() {
            return Err(refuse(
                "checksum",
                "身份证号码校验位不正确，请核对后重新填写。",
            ));
        }
        Ok(IdNumber(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `4419**********001X`: what anyone but the holder and the reviewers who need it sees.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// The three-digit sequence code (positions 15–17).
    pub fn sequence(&self) -> &str {
        &self.0[14..17]
    }
}

/// Masks all but the first four and the last four characters.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// A name as lists show it to those who are not its bearer: the family name's first character
/// and a `*` for every other (张伟 → 张*, 欧阳娜娜 → 欧***). Filters match on this form.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// A unified social credit code (统一社会信用代码).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uscc(String);

const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The GB 32100 check character of the first 17 characters.
pub fn uscc_check_character(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut n = 0;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += USCC_CHARS.find(c)? as u32 * w;
        n += 1;
    }
    if n != 17 || first17.chars().count() != 17 {
        return None;
    }
    USCC_CHARS.chars().nth(((31 - sum % 31) % 31) as usize)
}

impl Uscc {
    pub fn parse(s: &str) -> Result<Uscc, Refusal> {
        let s = s.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(refuse("length", "统一社会信用代码应为 18 位。"));
        }
        if !s.chars().all(|c| USCC_CHARS.contains(c)) {
            return Err(refuse(
                "characters",
                "统一社会信用代码只能由数字和大写字母（不含 I、O、Z、S、V）组成。",
            ));
        }
        let (body, check) = s.split_at(17);
        if uscc_check_character(body) != check.chars().next() {
            return Err(refuse(
                "checksum",
                "统一社会信用代码校验位不正确，请核对后重新填写。",
            ));
        }
        Ok(Uscc(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name as on the identity card: 2 to 30 characters of Chinese script, with the
/// middle dot of transliterated minority and foreign names (`阿依古丽·买买提`) between parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

impl PersonName {
    pub fn parse(s: &str) -> Result<PersonName, Refusal> {
        // Full-width and other look-alike dots are written as the standard middle dot.
        let s: String = s
            .trim()
            .chars()
            .map(|c| match c {
                '・' | '•' | '‧' | '∙' | '．' | '.' => '·',
                other => other,
            })
            .collect();
        let n = s.chars().count();
        if !(2..=30).contains(&n) {
            return Err(refuse("length", "姓名应为 2 至 30 个字。"));
        }
        if !s.chars().all(|c| is_han(c) || c == '·') {
            return Err(refuse(
                "characters",
                "姓名只能由汉字和间隔号“·”组成，请与身份证件上的姓名一致。",
            ));
        }
        if s.starts_with('·') || s.ends_with('·') || s.contains("··") {
            return Err(refuse("middle_dot", "间隔号“·”只能位于姓名各部分之间。"));
        }
        Ok(PersonName(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::domain::lifecycle::named_enum! {
    /// Where an identity verification stands.
    VerificationStatus {
        Pending => ("pending", "核验中"),
        Passed => ("passed", "核验通过"),
        Failed => ("failed", "核验未通过"),
        Cancelled => ("cancelled", "核验已取消"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 28);

    #[test]
    fn the_fixture_id_numbers_are_valid() {
        for id in [
            "44190019900101001X",
            "441900198506150021",
            "441900199202280032",
            "44190020000101004X",
            "11010519491231002X",
            "44190019900101001x",
        ] {
            assert!(IdNumber::parse(id, TODAY).is_ok(), "{id}");
        }
    }

    #[test]
    fn bad_id_numbers_name_their_rule() {
        let rule = |s: &str| IdNumber::parse(s, TODAY).unwrap_err().rule;
        assert_eq!(rule("441900199001010011"), "checksum");
        let feb31 = format!(
            "44190019900231001{}",
            id_check_character("44190019900231001").unwrap()
        );
        assert_eq!(rule(&feb31), "date");
        let future = format!(
            "44190020301201001{}",
            id_check_character("44190020301201001").unwrap()
        );
        assert_eq!(rule(&future), "future_date");
        assert_eq!(rule("441900900101001"), "old_form");
        assert_eq!(rule("4419001990010100"), "length");
        assert_eq!(rule("44190019900101A01X"), "characters");
    }

    #[test]
    fn masking_keeps_four_at_each_end() {
        let id = IdNumber::parse("44190019900101001X", TODAY).unwrap();
        assert_eq!(id.masked(), "4419**********001X");
        assert_eq!(format!("{id:?}"), "IdNumber(4419**********001X)");
    }

    #[test]
    fn uscc_checks() {
        assert!(Uscc::parse("91441900MA4W0L7N36").is_ok());
        assert_eq!(
            Uscc::parse("91441900MA4W0L7N37").unwrap_err().rule,
            "checksum"
        );
        assert_eq!(
            Uscc::parse("91441900MA4W0L7NI6").unwrap_err().rule,
            "characters"
        );
        assert_eq!(Uscc::parse("91441900MA4W0L7N3").unwrap_err().rule, "length");
    }

    #[test]
    fn names_with_the_middle_dot() {
        assert!(PersonName::parse("张伟").is_ok());
        assert_eq!(
            PersonName::parse("阿依古丽•买买提").unwrap().as_str(),
            "阿依古丽·买买提"
        );
        assert_eq!(PersonName::parse("张").unwrap_err().rule, "length");
        assert_eq!(
            PersonName::parse("Zhang Wei").unwrap_err().rule,
            "characters"
        );
        assert_eq!(PersonName::parse("·买买提").unwrap_err().rule, "middle_dot");
    }
}
