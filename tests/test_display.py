"""Control characters from writers' and models' text are shown, never sent to the terminal or browser."""

from b2p.display import strip_controls, visible


def test_controls_become_visible_and_printable_text_is_kept() -> None:
    hostile = "Zoë 🌊 Åse\x1b]0;owned\x07 done\rhidden\u202eevil\x00\x9b"
    shown = visible(hostile)
    assert shown == "Zoë 🌊 Åse\\x1b]0;owned\\x07 done\\x0dhidden\\u202eevil\\x00\\x9b"
    assert not any(ord(c) < 32 and c not in "\n\t" for c in shown)


def test_newlines_and_tabs_kept_unless_asked() -> None:
    assert visible("a\n\tb") == "a\n\tb"
    assert visible("a\nb", keep_newlines=False) == "a\\nb"


def test_model_prose_loses_its_controls_but_keeps_its_words() -> None:
    from b2p.prose import clean_prose

    assert strip_controls("a\x1b]0;x\x07b\r\n\tc\x1b[1;31md\x1bMe") == "ab\n\tcde"
    assert clean_prose("The lamp\x1b[31m burned red.\x07 Then") == "The lamp burned red."
