"""A chosen passphrase must resist offline guessing of the backup the server holds."""

import pytest

from client.passphrase import MIN_GUESSES_LOG10, check_passphrase, known_words
from core.crypto import WeakPassphrase


@pytest.mark.parametrize(
    "passphrase",
    [
        "Password12345678",
        "Summer2024Summer",
        "qwertyuiop123456",
        "hospital hospital",
        "aaaaaaaaaaaaaaaa",  # the floor's own refusal
        "Password1234567!",
    ],
)
def test_guessable_passphrases_are_refused(passphrase):
    with pytest.raises(WeakPassphrase) as refused:
        check_passphrase(passphrase)
    assert refused.value.code == "weak_passphrase"


def test_the_users_own_name_counts_as_a_known_word():
    passphrase = "CarolLambert1975!xx"
    assert check_passphrase(passphrase) >= MIN_GUESSES_LOG10
    with pytest.raises(WeakPassphrase):
        check_passphrase(passphrase, ["head_carol", "Carol Lambert"])


def test_known_words_split_logins_and_names():
    assert known_words(["head_carol", "Dr Carol Lambert"]) == [
        "head_carol",
        "head",
        "carol",
        "headcarol",
        "Dr Carol Lambert",
        "Dr",
        "Carol",
        "Lambert",
        "DrCarolLambert",
    ]


@pytest.mark.parametrize(
    "passphrase",
    [
        "correct horse battery staple",
        "le chat dort sur le radiateur",
        "bloc opératoire salle 4 mardi matin",
    ],
)
def test_long_unusual_passphrases_pass(passphrase):
    assert check_passphrase(passphrase) >= MIN_GUESSES_LOG10
