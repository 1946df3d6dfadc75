//! Exact quantities: areas in hundredths of a square metre and money in fen. Contracts compare
//! sums to the cent and the 0.01 m², so nothing here is a float.

use std::fmt;

/// An area in units of 0.01 m².
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Area(pub i64);

/// An amount of money in fen (0.01 yuan).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a decimal number with at most two places")]
    Format,
    #[error("out of range")]
    Range,
}

/// Parses `123`, `123.4` or `123.45` (no sign, no exponent) into hundredths.
fn parse_hundredths(s: &str) -> Result<i64, ParseError> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || int.len() > 15
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return Err(ParseError::Format);
    }
    let int: i64 = int.parse().map_err(|_| ParseError::Range)?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| ParseError::Format)? * 10,
        _ => frac.parse().map_err(|_| ParseError::Format)?,
    };
    int.checked_mul(100)
        .and_then(|v| v.checked_add(frac))
        .ok_or(ParseError::Range)
}

fn fmt_hundredths(v: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if v < 0 { "-" } else { "" };
    let v = v.unsigned_abs();
    write!(f, "{sign}{}.{:02}", v / 100, v % 100)
}

impl Area {
    pub fn parse(s: &str) -> Result<Area, ParseError> {
        parse_hundredths(s).map(Area)
    }
}

impl Money {
    pub fn parse_yuan(s: &str) -> Result<Money, ParseError> {
        parse_hundredths(s).map(Money)
    }
    pub fn from_yuan(yuan: i64) -> Money {
        Money(yuan * 100)
    }
    /// Unit price (per m²) times an area, rounded half up to the fen.
    pub fn times_area(self, area: Area) -> Option<Money> {
        let v = (self.0 as i128).checked_mul(area.0 as i128)?;
        let rounded = (v + 50) / 100;
        i64::try_from(rounded).ok().map(Money)
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(self.0, f)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(Area::parse("89.36").unwrap(), Area(8936));
        assert_eq!(Area::parse("71.2").unwrap(), Area(7120));
        assert_eq!(Area::parse("18").unwrap(), Area(1800));
        for bad in ["", ".5", "5.", "1.234", "-1", "1e3", "１２"] {
            assert!(Area::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Area(8936).to_string(), "89.36");
    }

    #[test]
    fn sample_total_price() {
        // 1栋1203 of the sample development: 30,500 元/m² × 89.36 m² = 2,725,480 元.
        let total = Money::from_yuan(30_500).times_area(Area(8936)).unwrap();
        assert_eq!(total, Money::from_yuan(2_725_480));
    }
}
