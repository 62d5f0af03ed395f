/// Strict RFC 3339 date-times (`2026-11-23T10:15:00Z`, `2026-11-23T11:15:00.5+01:00`), so that
/// only real instants reach the database (PostgreSQL alone would also take "tomorrow").
public enum RFC3339 {
    public static func parse(_ text: String) -> Timestamp? {
        let bytes = Array(text.utf8)
        var position = 0

        func digits(_ count: Int) -> Int? {
            guard position + count <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<count {
                let byte = bytes[position]
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
                position += 1
            }
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard position < bytes.count, characters.utf8.contains(bytes[position]) else { return false }
            position += 1
            return true
        }

        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
            expect("Tt "), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"), let second = digits(2)
        else { return nil }
        var milliseconds = 0
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            position += 1
            var scale = 100
            var sawDigit = false
            while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 {
                milliseconds += Int(bytes[position] - 48) * scale
                scale /= 10
                sawDigit = true
                position += 1
            }
            guard sawDigit else { return nil }
        }
        var offsetMinutes = 0
        guard position < bytes.count else { return nil }
        if expect("Zz") {
        } else {
            let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            guard expect("+-"), let offsetHours = digits(2), expect(":"), let offsetMins = digits(2),
                offsetHours < 24, offsetMins < 60
            else { return nil }
            offsetMinutes = sign * (offsetHours * 60 + offsetMins)
        }
        guard position == bytes.count else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 61
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + min(second, 59) - offsetMinutes * 60
        return Timestamp(millisecondsSinceEpoch: Int64(seconds) * 1000 + Int64(milliseconds))
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
