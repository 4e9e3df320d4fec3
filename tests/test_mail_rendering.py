"""Email templates are untrusted: the sandbox refuses or bounds every known server-side template injection."""

from __future__ import annotations

import threading

import pytest

from app.services.mail.rendering import MAX_OUTPUT_CHARS, TemplateProblem, compile_template

ALLOWED = {"contact_name", "business_name", "notes", "organization_name"}
DATA = {"contact_name": "Ada", "business_name": "Lovelace Labs", "notes": "n " * 5_000, "organization_name": "Acme"}


def attempt(source: str) -> str:
    """The template's output, or the message it is refused with (at save time or when filled in)."""
    try:
        return compile_template(source, html=True, allowed=ALLOWED, sample=DATA).render(DATA)
    except TemplateProblem as exc:
        return "refused: " + exc.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact_name.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ config.items() }}",
        "{{ request.application.__globals__ }}",
        "{{ contact_name|attr('__class__') }}",
        "{{ contact_name.__class__ }}",
        "{{ contact_name['__class__'] }}",
        "{{ '{0.__class__.__mro__}'.format(contact_name) }}",
        "{{ '%s'|format(contact_name) }}",
        "{{ '%(a)s' % {'a': contact_name} }}",
        "{{ 'x' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ 2 ** 100000000 }}",
        "{{ range(10**9)|length }}",
        "{{ notes.center(10**9) }}",
        "{{ notes.ljust(1000000000) }}",
        "{{ notes.zfill(1000000000) }}",
        "{{ notes|replace('', 'xxxxxxxxxxxxxxxxxxxx')|replace('', 'xxxxxxxxxxxxxxxxxxxx') }}",
        "{{ notes.replace('n', notes) }}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}"
        "{% endfor %}",
        "{% for a in notes %}{% for b in notes %}{% endfor %}{% endfor %}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{{ notes }}{% endfor %}{% endfor %}",
        "{% set x = contact_name %}{{ x }}",
        "{% with x = notes %}{{ x }}{% endwith %}",
        "{% macro boom() %}{{ boom() }}{% endmacro %}{{ boom() }}",
        "{% include '/etc/passwd' %}",
        "{% extends 'base.html' %}",
        "{{ contact_name|safe }}",
        "{% autoescape false %}{{ contact_name }}{% endautoescape %}",
        "{% filter upper %}{{ notes }}{% endfilter %}",
        "{{ loop.__class__ }}",
        "{% for x in range(3) %}{{ loop.__init__.__globals__ }}{% endfor %}",
        "{{ notes.split()|join(notes) }}",
    ],
)
def test_a_hostile_template_is_refused_or_bounded(source):
    result = attempt(source)
    assert result.startswith("refused: "), result[:200]
    assert "Traceback" not in result and len(result) < 500


def test_template_errors_name_the_line_and_the_unknown_variables():
    assert attempt("Hello {{ contact_name }\n").startswith("refused: Line 1:")
    assert attempt("Hi\n{% if contact_name %}\nno end").startswith("refused: Line 3:")
    assert attempt("Hi {{ first_name }} and {{ surname }}") == (
        "refused: Unknown variables: {{ first_name }}, {{ surname }}. Use one of the listed variables."
    )


def test_contact_data_is_escaped_in_html_and_left_alone_in_text():
    hostile = {**DATA, "contact_name": "<script>alert(1)</script>", "business_name": "Smith & Sons <b>"}
    source = "<p>Hi {{ contact_name }} of {{ business_name|upper }}</p>"
    html = compile_template(source, html=True, allowed=ALLOWED).render(hostile)
    assert html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; of SMITH &amp; SONS &lt;B&gt;</p>"
    text = compile_template("Hi {{ contact_name }}", html=False, allowed=ALLOWED).render(hostile)
    assert text == "Hi <script>alert(1)</script>"


def test_ordinary_templates_keep_their_features():
    source = (
        "Dear {{ contact_name|default('customer') }},\n"
        "{% if business_name %}Thanks for choosing {{ organization_name }}, {{ business_name|title }}.{% endif %}\n"
        "{% for word in notes.split()[:3] %}{{ loop.index }}:{{ word|truncate(5) }} {% endfor %}"
    )
    out = compile_template(source, html=False, allowed=ALLOWED).render(
        {**DATA, "business_name": "lovelace labs", "notes": "alpha beta gamma delta"}
    )
    assert out == "Dear Ada,\nThanks for choosing Acme, Lovelace Labs.1:alpha 2:beta 3:gamma "  # (trim_blocks)


def test_a_variable_removed_since_the_template_was_saved_renders_as_nothing():
    template = compile_template("Plan: {{ plan }}.", html=False, allowed=ALLOWED | {"plan"})
    assert template.render(DATA) == "Plan: ."


def test_the_output_cap_and_the_deadline_leave_the_next_render_alone():
    big = compile_template(
        "{% for i in range(1000) %}{{ notes }}{% endfor %}", html=False, allowed=ALLOWED, sample={"notes": "short"}
    )
    with pytest.raises(TemplateProblem, match=f"more than {MAX_OUTPUT_CHARS:,} characters"):
        big.render(DATA)
    slow = compile_template(
        "{% for a in notes %}{% for b in notes %}{% endfor %}{% endfor %}",
        html=False,
        allowed=ALLOWED,
        sample={"notes": "short"},
    )
    with pytest.raises(TemplateProblem, match="longer than 1 s"):
        slow.render(DATA)
    quick = compile_template("Hi {{ contact_name }}", html=False, allowed=ALLOWED)
    assert [quick.render(DATA) for _ in range(2000)] == ["Hi Ada"] * 2000


def test_renders_in_many_threads_are_interrupted_only_when_they_overrun():
    quick = compile_template("Hi {{ contact_name }}", html=False, allowed=ALLOWED)
    slow = compile_template(
        "{% for a in notes %}{% for b in notes %}{% endfor %}{% endfor %}",
        html=False,
        allowed=ALLOWED,
        sample={"notes": "short"},
    )
    results: dict[str, list] = {"quick": [], "slow": []}

    def run_quick():
        results["quick"].extend(quick.render(DATA) for _ in range(3000))

    def run_slow():
        try:
            slow.render(DATA)
        except TemplateProblem as exc:
            results["slow"].append(exc.message)

    threads = [threading.Thread(target=run_quick) for _ in range(3)] + [threading.Thread(target=run_slow)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["quick"] == ["Hi Ada"] * 9000
    assert len(results["slow"]) == 1 and "longer than 1 s" in results["slow"][0]
