"""lib/names: when two names written for one CPF/CNPJ are the same person, and when clearly not."""

import pytest

from lib.names import same_person

SAME = [
    ("Ana Antunes", "ANA ANTUNES"),
    ("Ana Antunes", "ána antúnes"),
    ("Ana Antunes", "Ana  Antunes."),
    ("Ana Antunes", "Ana Maria Antunes"),  # an added name
    ("Ana Antunes", "Ana Antunes da Silva"),  # an added surname
    ("Ana Antunes", "Ana de Antunes"),  # a particle
    ("Ana dos Santos", "Ana Santos"),
    ("Ana Antunes", "A. Antunes"),  # an initial
    ("Ana Maria Antunes", "Ana M. Antunes"),
    ("Ana Antunes", "Ana A."),
    ("Maria José Souza", "Ma. José Souza"),  # common abbreviation
    ("Francisco Alves", "Fco Alves"),
    ("Ana Antunes", "Ana Antun. Silva"),
    ("Solar Agro Ltda", "Solar Agro"),  # company suffix
    ("José da Silva", None),  # an empty name never conflicts
    ("", "Bruno Barbosa"),
]
DIFFERENT = [
    ("Ana Antunes", "Bruno Barbosa"),  # issue 12 §5
    ("Ana Antunes", "Ana Souza"),  # another surname
    ("Ana Antunes", "Anabela Antunes"),  # another first name, not an abbreviation
    ("Maria Silva", "Marta Silva"),
    ("Ana Maria Antunes", "Ana Beatriz Antunes"),
    ("João Souza", "José Souza"),
    ("Ana Antunes", "Antunes Ana"),  # order matters: the first name is the first word
]


@pytest.mark.parametrize(("first", "second"), SAME)
def test_same_person(first, second):
    assert same_person(first, second) and same_person(second, first)


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_clearly_different_people(first, second):
    assert not same_person(first, second) and not same_person(second, first)
