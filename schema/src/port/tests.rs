use expect_test::expect;

use super::Port;

#[test]
fn parses_numbers_and_names() {
    let rendered = [
        "80",
        "0",
        "65535",
        "65536",
        "080",
        "http",
        "HTTP-Alt",
        "dns-tcp",
        "a",
        "-http",
        "http-",
        "ht--tp",
        "123",
        "x1234567890123456",
        "eighty!",
        "",
        "8o",
    ]
    .iter()
    .map(|input| format!("{input:?} -> {:?}", Port::parse(input)))
    .collect::<Vec<_>>()
    .join("\n");
    expect![[r#"
        "80" -> Some(Number(80))
        "0" -> Some(Number(0))
        "65535" -> Some(Number(65535))
        "65536" -> None
        "080" -> None
        "http" -> Some(Name("http"))
        "HTTP-Alt" -> Some(Name("http-alt"))
        "dns-tcp" -> Some(Name("dns-tcp"))
        "a" -> Some(Name("a"))
        "-http" -> None
        "http-" -> None
        "ht--tp" -> None
        "123" -> Some(Number(123))
        "x1234567890123456" -> None
        "eighty!" -> None
        "" -> None
        "8o" -> Some(Name("8o"))"#]]
    .assert_eq(&rendered);
}
