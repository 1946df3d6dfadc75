//! Amounts in Chinese capital numerals (大写金额), as contracts and receipts write them:
//! 2,725,480.00 元 → 贰佰柒拾贰万伍仟肆佰捌拾元整.

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
const SMALL: [&str; 4] = ["", "拾", "佰", "仟"];
const BIG: [&str; 4] = ["", "万", "亿", "万亿"];

/// Writes an amount given in fen. Negative amounts get 负.
pub fn capital_amount(fen: i64) -> String {
    let negative = fen < 0;
    let fen = fen.unsigned_abs();
    let yuan = fen / 100;
    let jiao = (fen / 10) % 10;
    let fen_digit = fen % 10;
    let mut out = String::new();
    if negative {
        out.push('负');
    }
    if yuan > 0 {
        out.push_str(&integer_part(yuan));
        out.push('元');
    }
    if jiao == 0 && fen_digit == 0 {
        if yuan == 0 {
            out.push_str("零元");
        }
        out.push('整');
        return out;
    }
    if jiao > 0 {
        out.push(DIGITS[jiao as usize]);
        out.push('角');
    } else if yuan > 0 {
        out.push('零');
    }
    if fen_digit > 0 {
        out.push(DIGITS[fen_digit as usize]);
        out.push('分');
    } else {
        out.push('整');
    }
    out
}

fn integer_part(mut n: u64) -> String {
    // Groups of four digits, least significant first.
    let mut groups = Vec::new();
    while n > 0 {
        groups.push((n % 10_000) as usize);
        n /= 10_000;
    }
    let mut out = String::new();
    let mut pending_zero = false;
    for (gi, g) in groups.iter().enumerate().rev() {
        if *g == 0 {
            pending_zero = !out.is_empty();
            continue;
        }
        if pending_zero || (!out.is_empty() && *g < 1000) {
            out.push('零');
        }
        pending_zero = false;
        let digits = [g / 1000, (g / 100) % 10, (g / 10) % 10, g % 10];
        let mut zero = false;
        let mut started = false;
        for (i, d) in digits.iter().enumerate() {
            let pos = 3 - i;
            if *d == 0 {
                zero = started;
                continue;
            }
            if zero {
                out.push('零');
                zero = false;
            }
            started = true;
            out.push(DIGITS[*d]);
            out.push_str(SMALL[pos]);
        }
        out.push_str(BIG[gi.min(3)]);
    }
    out
}

// Amounts below are written in fen as `<yuan>_<fen>`, which reads better than uniform grouping.
#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::capital_amount as c;

    #[test]
    fn known_amounts() {
        assert_eq!(c(2_725_480_00), "贰佰柒拾贰万伍仟肆佰捌拾元整");
        assert_eq!(c(100_000_000_00), "壹亿元整");
        assert_eq!(c(1_000_500_00), "壹佰万零伍佰元整");
        assert_eq!(c(1_005_00), "壹仟零伍元整");
        assert_eq!(c(10_010_00), "壹万零壹拾元整");
        assert_eq!(c(100_01), "壹佰元零壹分");
        assert_eq!(c(12_30), "壹拾贰元叁角整");
        assert_eq!(c(12_34), "壹拾贰元叁角肆分");
        assert_eq!(c(5), "伍分");
        assert_eq!(c(0), "零元整");
        assert_eq!(c(300_000_000_00), "叁亿元整");
        assert_eq!(c(300_050_000_00), "叁亿零伍万元整");
        assert_eq!(c(817_644_00), "捌拾壹万柒仟陆佰肆拾肆元整");
    }
}
