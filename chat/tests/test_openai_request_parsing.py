"""/v1/chat/completions checks the common request shape by hand and leaves
everything else to the serializer: whatever the hand check accepts, the
serializer accepts too, with the same validated data."""

from hypothesis import event, given, settings
from hypothesis import strategies as st

from chat.apis.openai import ChatCompletionRequestSerializer, _common_request

texts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["support", " support", "support ", "", "a\x00b", "\ud800", "x" * 64, "x" * 65, "x" * 201]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), texts)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "system", "assistant", "developer", "tool", "x"]), "content": texts}
        ),
        st.dictionaries(st.sampled_from(["role", "content", "name"]), scalars, max_size=3),
        scalars,
    ),
    max_size=4,
)
requests = st.dictionaries(
    st.sampled_from(
        ["model", "messages", "stream", "stream_options", "user", "temperature", "max_tokens", "top_p", "n"]
    ),
    st.one_of(scalars, messages, st.dictionaries(texts, scalars, max_size=2)),
    max_size=9,
)


# Near the common shape, so that the hand check's acceptance is exercised.
near_common = st.fixed_dictionaries(
    {
        "model": texts,
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer", "tool"]), "content": texts}),
            min_size=0,
            max_size=3,
        ),
    },
    optional={
        "stream": st.one_of(st.booleans(), st.integers(0, 1)),
        "stream_options": st.one_of(st.dictionaries(texts, scalars, max_size=2), scalars),
        "user": texts,
        "temperature": st.one_of(st.floats(-1, 3), st.integers(-1, 3), st.booleans()),
        "max_tokens": st.one_of(st.integers(-1, 5), st.floats(0, 3), st.booleans()),
    },
)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@settings(max_examples=400, deadline=None)
@given(st.one_of(requests, near_common))
def test_what_the_hand_check_accepts_the_serializer_accepts_alike(data):
    quick = _common_request(data)
    event("accepted by hand" if quick is not None else "left to the serializer")
    if quick is None:
        return
    serializer = ChatCompletionRequestSerializer(data=data)
    assert serializer.is_valid(), serializer.errors
    expected = _plain(serializer.validated_data)
    expected = {k: v for k, v in expected.items() if not (k == "stream" and v is False and "stream" not in data)}
    quick = {k: v for k, v in quick.items() if not (k == "stream" and v is False and "stream" not in data)}
    assert quick == expected


def test_the_usual_request_takes_the_hand_check():
    data = {
        "model": "support",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hours?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        "max_tokens": 100,
        "user": "customer-42",
    }
    assert _common_request(data) == {**data, "temperature": 0.0}
    assert _common_request({**data, "n": 1}) is None  # anything else goes to the serializer
    assert _common_request({**data, "model": " support"}) is None
