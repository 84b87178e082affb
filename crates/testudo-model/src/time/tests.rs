//! Specifications of FQL `Time` and `Date`: text forms, calendar fields and arithmetic.

use super::*;

fn t(s: &str) -> Time {
    Time::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
}

fn iso(s: &str) -> String {
    t(s).to_string()
}

#[test]
fn instant_range_constants_match_java() {
    assert_eq!(
        INSTANT_MIN_SECS,
        days_from_civil(-1_000_000_000, 1, 1) * SECS_PER_DAY
    );
    assert_eq!(
        INSTANT_MAX_SECS,
        days_from_civil(1_000_000_000, 12, 31) * SECS_PER_DAY + 86_399
    );
    assert_eq!(Time::MIN.to_string(), "-1000000000-01-01T00:00:00Z");
    assert_eq!(
        Time::MAX.to_string(),
        "+1000000000-12-31T23:59:59.999999999Z"
    );
    assert_eq!(Time::FQL_MIN.to_string(), "-999999999-01-01T00:00:00Z");
    assert_eq!(
        Time::FQL_MAX.to_string(),
        "+999999999-12-31T23:59:59.999999999Z"
    );
}

#[test]
fn civil_conversion_round_trips_across_eras() {
    let mut days = -400 * 146_097 * 3;
    while days < 400 * 146_097 * 3 {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        assert!((1..=month_length(y, m)).contains(&d));
        days += 997;
    }
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    assert_eq!(days_from_civil(1, 1, 1), -719_162);
}

#[test]
fn display_is_instant_to_string_with_0_3_6_9_fraction_digits() {
    assert_eq!(Time::EPOCH.to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(iso("2024-10-09T14:49:17.620Z"), "2024-10-09T14:49:17.620Z");
    assert_eq!(iso("2024-10-09T14:49:17.62Z"), "2024-10-09T14:49:17.620Z");
    assert_eq!(
        iso("2024-10-09T14:49:17.000001Z"),
        "2024-10-09T14:49:17.000001Z"
    );
    assert_eq!(
        iso("2024-10-09T14:49:17.0000001Z"),
        "2024-10-09T14:49:17.000000100Z"
    );
    assert_eq!(iso("2024-10-09T14:49:17.000Z"), "2024-10-09T14:49:17Z");
    assert_eq!(
        Time::from_micros(-1).to_string(),
        "1969-12-31T23:59:59.999999Z"
    );
    assert_eq!(iso("+10000-01-01T00:00:00Z"), "+10000-01-01T00:00:00Z");
    assert_eq!(iso("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00Z");
    assert_eq!(iso("-0001-12-31T23:59:59Z"), "-0001-12-31T23:59:59Z");
    assert_eq!(iso("-12345-06-07T08:09:10Z"), "-12345-06-07T08:09:10Z");
}

#[test]
fn parse_accepts_every_offset_form_the_core_accepts() {
    let base = t("2020-01-01T00:00:00Z");
    assert_eq!(t("2020-01-01T01:00:00+01:00"), base);
    assert_eq!(t("2020-01-01T01:00:00+0100"), base);
    assert_eq!(t("2019-12-31T23:00:00-01:00"), base);
    assert_eq!(t("2020-01-01T01:00:30+01:00:30"), base);
    assert_eq!(t("2020-01-01T00:00:00+00:00"), base);
    assert_eq!(t("2020-01-01T00:00:00-00:00"), base);
    assert_eq!(t("2020-01-01T00:00:00+0000"), base);
    assert_eq!(t("2020-01-01t00:00:00z"), base);
    assert_eq!(t("2020-01-01T00:00Z"), base);
    assert_eq!(t("2020-01-01T00:00:00.Z"), base);
    // Both optional offset sections may match when they agree.
    assert_eq!(t("2020-01-01T00:00:00Z+0000"), base);
    assert_eq!(t("2020-01-01T01:00:00+01:00+0100"), base);
    assert_eq!(t("2020-01-01T18:00:00+18:00"), base);
}

#[test]
fn parse_rejects_what_the_core_rejects() {
    for bad in [
        "2020-01-01 01:01:01",
        "2020-01-01T00:00:00",
        "2020-01-01T00:00:00+01",
        "2020-01-01T00:00:00+1:00",
        "2020-01-01T00:00:00+01:00:",
        "2020-01-01T00:00:00Z+0100",
        "2020-01-01T00:00:00+18:01",
        "2020-01-01T00:00:00+24:00",
        "2020-01-01T00:00:00.1234567890Z",
        "2020-01-01T00Z",
        "2020-01-01T00:00:0Z",
        "2020-1-01T00:00:00Z",
        "20200-01-01T00:00:00Z",
        "+2020-01-01T00:00:00Z",
        "-0000-01-01T00:00:00Z",
        "+99999999999-01-01T00:00:00Z",
        "+1000000000-01-01T00:00:00Z",
        "2020-13-01T00:00:00Z",
        "2020-00-01T00:00:00Z",
        "2020-01-32T00:00:00Z",
        "2020-01-00T00:00:00Z",
        "2020-01-01T24:00:01Z",
        "2020-01-01T23:60:00Z",
        "2020-01-01T23:59:60Z",
        "2020-01-01T00:00:00,5Z",
        " 2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00Z ",
        "２020-01-01T00:00:00Z",
        "",
    ] {
        assert_eq!(Time::parse(bad), None, "{bad:?} should be rejected");
    }
}

#[test]
fn parse_resolves_like_java_smart_mode() {
    assert_eq!(iso("2023-02-31T00:00:00Z"), "2023-02-28T00:00:00Z");
    assert_eq!(iso("2024-02-30T00:00:00Z"), "2024-02-29T00:00:00Z");
    assert_eq!(iso("2023-04-31T12:00:00Z"), "2023-04-30T12:00:00Z");
    assert_eq!(iso("2023-12-31T24:00Z"), "2024-01-01T00:00:00Z");
    assert_eq!(iso("+99999-01-01T00:00:00Z"), "+99999-01-01T00:00:00Z");
    assert_eq!(
        iso("-999999999-01-01T00:00:00+18:00"),
        "-1000000000-12-31T06:00:00Z"
    );
    assert_eq!(
        iso("+999999999-12-31T23:59:59.999999999-18:00"),
        "+1000000000-01-01T17:59:59.999999999Z"
    );
}

#[test]
fn civil_fields_are_utc() {
    let x = t("2023-02-10T12:01:19.000Z");
    assert_eq!((x.year(), x.month(), x.day_of_month()), (2023, 2, 10));
    assert_eq!(x.day_of_week(), 5);
    assert_eq!(x.day_of_year(), 41);
    assert_eq!(
        (x.hour(), x.minute(), x.second(), x.nanos()),
        (12, 1, 19, 0)
    );
    let y = t("1969-12-31T23:59:59.5Z");
    assert_eq!(
        (
            y.year(),
            y.day_of_year(),
            y.day_of_week(),
            y.second(),
            y.nanos()
        ),
        (1969, 365, 3, 59, 500_000_000)
    );
    assert_eq!(t("2024-12-31T00:00:00Z").day_of_year(), 366);
}

#[test]
fn nanos_and_micros_round_trip_and_floor() {
    assert_eq!(Time::from_nanos(-1).map(Time::to_nanos), Some(-1));
    assert_eq!(Time::from_nanos(-1).map(Time::to_micros), Some(-1));
    assert_eq!(Time::from_nanos(-1).map(Time::to_millis), Some(-1));
    assert_eq!(
        Time::from_micros(1_718_340_750_415_639).to_micros(),
        1_718_340_750_415_639
    );
    assert_eq!(Time::from_nanos(Time::MAX.to_nanos()), Some(Time::MAX));
    assert_eq!(Time::from_nanos(Time::MAX.to_nanos() + 1), None);
    assert_eq!(Time::from_nanos(Time::MIN.to_nanos() - 1), None);
    assert_eq!(Time::from_nanos(i128::MAX), None);
    assert_eq!(Time::new(0, 1_000_000_000), None);
    assert_eq!(Time::MAX.checked_add_nanos(1), None);
}

#[test]
fn add_and_subtract_every_unit_from_the_epoch() {
    let units = [
        (
            "nanosecond",
            "1970-01-01T00:00:00.000000001Z",
            "1969-12-31T23:59:59.999999999Z",
        ),
        (
            "microseconds",
            "1970-01-01T00:00:00.000001Z",
            "1969-12-31T23:59:59.999999Z",
        ),
        (
            "millisecond",
            "1970-01-01T00:00:00.001Z",
            "1969-12-31T23:59:59.999Z",
        ),
        ("seconds", "1970-01-01T00:00:01Z", "1969-12-31T23:59:59Z"),
        ("minute", "1970-01-01T00:01:00Z", "1969-12-31T23:59:00Z"),
        ("hours", "1970-01-01T01:00:00Z", "1969-12-31T23:00:00Z"),
        ("half day", "1970-01-01T12:00:00Z", "1969-12-31T12:00:00Z"),
        (" days\n", "1970-01-02T00:00:00Z", "1969-12-31T00:00:00Z"),
    ];
    for (name, plus, minus) in units {
        let unit = TimeUnit::parse(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            Time::EPOCH.add(1, unit).map(|t| t.to_string()),
            Ok(plus.to_string())
        );
        assert_eq!(
            Time::EPOCH.subtract(1, unit).map(|t| t.to_string()),
            Ok(minus.to_string())
        );
        assert_eq!(
            Time::epoch(1, unit).map(|t| t.to_string()),
            Some(plus.to_string())
        );
    }
    assert_eq!(TimeUnit::parse("invalid"), None);
    assert_eq!(TimeUnit::parse("Days"), None);
    assert_eq!(TimeUnit::parse("halfday"), None);
}

#[test]
fn arithmetic_overflow_is_an_error_never_a_panic() {
    let day = TimeUnit::Day;
    assert_eq!(
        Time::FQL_MAX.add(1, TimeUnit::Nanosecond),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(
        Time::FQL_MIN.subtract(1, TimeUnit::Nanosecond),
        Err(TimeRangeError::BeforeMin)
    );
    assert_eq!(
        Time::EPOCH.add(i64::MAX, day),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(
        Time::EPOCH.add(i64::MIN, day),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(
        Time::EPOCH.subtract(i64::MIN, day),
        Err(TimeRangeError::BeforeMin)
    );
    assert_eq!(
        Time::EPOCH.add(DATE_MIN_DAYS - 1, day),
        Err(TimeRangeError::BeforeMin)
    );
    // Leaving Instant's range while adding is "after max" in Fauna, even going backwards.
    assert_eq!(
        Time::EPOCH.add(-400_000_000_000, day),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(Time::epoch(i64::MAX, day), None);
    assert_eq!(
        Time::epoch(i64::MAX, TimeUnit::Nanosecond).map(|t| t.year()),
        Some(2262)
    );
    assert_eq!(
        Time::EPOCH.add_f64(f64::NAN, day),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(
        Time::EPOCH.subtract_f64(f64::INFINITY, day),
        Err(TimeRangeError::BeforeMin)
    );
    assert_eq!(
        Time::EPOCH.add_f64(1e300, day),
        Err(TimeRangeError::AfterMax)
    );
    assert_eq!(Time::MIN.difference(Time::MAX, TimeUnit::Nanosecond), None);
    assert_eq!(Time::MAX.difference(Time::MIN, day), Some(730_485_000_365));
}

#[test]
fn double_amounts_add_whole_units_and_truncated_fractions() {
    let sec = TimeUnit::Second;
    assert_eq!(
        Time::EPOCH.add_f64(1.5, sec).map(|t| t.to_string()),
        Ok("1970-01-01T00:00:01.500Z".into())
    );
    assert_eq!(
        Time::EPOCH.add_f64(-1.5, sec).map(|t| t.to_string()),
        Ok("1969-12-31T23:59:58.500Z".into())
    );
    assert_eq!(
        Time::EPOCH
            .subtract_f64(0.25, TimeUnit::Day)
            .map(|t| t.to_string()),
        Ok("1969-12-31T18:00:00Z".into())
    );
    assert_eq!(
        Time::EPOCH.add_f64(0.1, TimeUnit::Nanosecond),
        Ok(Time::EPOCH)
    );
    assert_eq!(
        Time::epoch_f64(1.5, sec).map(|t| t.to_string()),
        Some("1970-01-01T00:00:01.500Z".into())
    );
    assert_eq!(
        Time::epoch_f64(0.5, TimeUnit::Nanosecond).map(Time::to_nanos),
        Some(1)
    );
    assert_eq!(
        Time::epoch_f64(-0.5, TimeUnit::Nanosecond).map(Time::to_nanos),
        Some(0)
    );
    assert_eq!(Time::epoch_f64(f64::NAN, sec), Some(Time::MAX));
    assert_eq!(Time::epoch_f64(1e300, sec), Some(Time::MAX));
    assert_eq!(Time::epoch_f64(1e10, sec), None);
}

#[test]
fn difference_truncates_toward_zero() {
    // As `ChronoUnit.between` on current JDKs (JDK 17 was off by one for millis here).
    let start = Time::new(0, 1_500_000).unwrap();
    let end = Time::new(1, 1_000_000).unwrap();
    assert_eq!(end.difference(start, TimeUnit::Millisecond), Some(999));
    assert_eq!(start.difference(end, TimeUnit::Microsecond), Some(-999_500));
    let a = t("2020-01-01T00:00:00Z");
    let b = t("2020-01-02T11:59:59.999Z");
    assert_eq!(b.difference(a, TimeUnit::Day), Some(1));
    assert_eq!(a.difference(b, TimeUnit::Day), Some(-1));
    assert_eq!(b.difference(a, TimeUnit::HalfDay), Some(2));
    assert_eq!(b.difference(a, TimeUnit::Millisecond), Some(129_599_999));
    assert_eq!(a.difference(b, TimeUnit::Second), Some(-129_599));
}

#[test]
fn date_parse_is_strict() {
    assert_eq!(
        Date::parse("2023-01-31").map(|d| d.to_string()),
        Some("2023-01-31".into())
    );
    assert_eq!(Date::parse("2024-02-29").map(|d| d.day_of_year()), Some(60));
    assert_eq!(
        Date::parse("-0001-01-01").map(|d| d.to_string()),
        Some("-0001-01-01".into())
    );
    assert_eq!(
        Date::parse("+10000-01-01").map(|d| d.to_string()),
        Some("+10000-01-01".into())
    );
    for bad in [
        "2023-02-29",
        "2023-02-30",
        "01-01-2020",
        "2023-1-01",
        "2023-01-01T00:00:00Z",
        "10000-01-01",
        "+1000000000-01-01",
        "",
    ] {
        assert_eq!(Date::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn date_fields_and_arithmetic() {
    let d = Date::from_ymd(2023, 2, 10).unwrap_or_else(|| panic!("valid"));
    assert_eq!(
        (
            d.year(),
            d.month(),
            d.day_of_month(),
            d.day_of_week(),
            d.day_of_year()
        ),
        (2023, 2, 10, 5, 41)
    );
    assert_eq!(
        d.add_days(20).map(|d| d.to_string()),
        Some("2023-03-02".into())
    );
    assert_eq!(
        d.add_days(-41).map(|d| d.to_string()),
        Some("2022-12-31".into())
    );
    assert_eq!(d.difference(Date::from_days(0)), 19_398);
    assert_eq!(d.at_midnight().to_string(), "2023-02-10T00:00:00Z");
    assert_eq!(d.add_days(i64::MAX), None);
    assert_eq!(
        Date::from_ymd(YEAR_MAX, 12, 31).and_then(|d| d.add_days(1)),
        None
    );
    assert_eq!(Date::from_days(i64::MIN).at_midnight(), Time::MIN);
    assert_eq!(Time::from_micros(-1).date().to_string(), "1969-12-31");
    assert_eq!(Date::from_ymd(2023, 2, 29), None);
}

#[test]
fn absurd_dates_from_raw_days_never_panic() {
    for days in [i64::MIN, i64::MAX, i64::MIN / 2, i64::MAX / 2] {
        let d = Date::from_days(days);
        let _ = (
            d.to_string(),
            d.year(),
            d.day_of_week(),
            d.day_of_year(),
            d.at_midnight(),
        );
    }
}

#[test]
fn parse_matches_javas_formatter_on_odd_inputs() {
    // Expected values printed by `Instant.from(formatter.parse(s))` on a JDK, with the
    // core's formatter.
    for (input, java) in [
        ("-12345-02-28T24:00:00.0+01:00:30", "-12345-02-28T22:59:30Z"),
        (
            "+0000000001-12-31T00:00:00.1-0130",
            "0001-12-31T01:30:00.100Z",
        ),
        ("2020-04-31t00:00:00.1+01:00:30", "2020-04-29T22:59:30.100Z"),
        ("0000-02-30T24:00:00.0+01:00+0100", "0000-02-29T23:00:00Z"),
        (
            "+999999999-02-30T00:00:00.+01:00:30",
            "+999999999-02-27T22:59:30Z",
        ),
        ("-0001-01-01T00:00+01:00:30", "-0002-12-31T22:59:30Z"),
    ] {
        assert_eq!(iso(input), java, "{input}");
    }
}
