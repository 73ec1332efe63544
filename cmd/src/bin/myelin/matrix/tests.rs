use expect_test::{Expect, expect};
use policy::trace::Probe;

use super::{Cell, Matrix, MatrixFormat};

fn matrix(cells: &[&[Cell]]) -> Matrix {
    Matrix {
        names: vec!["x/a".to_owned(), "y/b".to_owned()],
        tables: vec![
            (
                Probe::tcp(80),
                cells.iter().map(|row| row.to_vec()).collect(),
            ),
            (
                "53/UDP".parse().expect("probe"),
                vec![vec![Cell::Allowed; 2]; 2],
            ),
        ],
    }
}

fn check(matrix: &Matrix, table: Expect, json: Expect) {
    table.assert_eq(&matrix.render(MatrixFormat::Table));
    json.assert_eq(&matrix.render(MatrixFormat::Json));
}

#[test]
fn a_prediction_prints_dots_and_crosses() {
    use Cell::{Allowed as A, Denied as D};
    check(
        &matrix(&[&[A, D], &[A, A]]),
        expect![[r#"
            80/TCP
            -	x/a	y/b
            x/a	.	X
            y/b	.	.

            53/UDP
            -	x/a	y/b
            x/a	.	.
            y/b	.	.
        "#]],
        expect![[r#"
            {"probes":[{"probe":"80/TCP","from":["x/a","y/b"],"to":["x/a","y/b"],"allowed":[[true,false],[true,true]]},{"probe":"53/UDP","from":["x/a","y/b"],"to":["x/a","y/b"],"allowed":[[true,true],[true,true]]}]}
        "#]],
    );
}

#[test]
fn a_refused_pair_is_neither_allowed_nor_denied() {
    use Cell::{Allowed as A, Denied as D, Refused as R};
    check(
        &matrix(&[&[A, R], &[D, A]]),
        expect![[r#"
            80/TCP
            -	x/a	y/b
            x/a	.	R
            y/b	X	.

            53/UDP
            -	x/a	y/b
            x/a	.	.
            y/b	.	.
        "#]],
        expect![[r#"
            {"probes":[{"probe":"80/TCP","from":["x/a","y/b"],"to":["x/a","y/b"],"allowed":[[true,false],[false,true]],"refused":[[false,true],[false,false]]},{"probe":"53/UDP","from":["x/a","y/b"],"to":["x/a","y/b"],"allowed":[[true,true],[true,true]]}]}
        "#]],
    );
}
