"""Operations shared by migrations that move models between apps."""


def content_types_move(app_label: str, names: tuple[str, ...], *, to: str):
    """A ``RunPython`` function that renames the content types of ``names``
    from ``app_label`` to ``to``, so that permissions granted on the models
    and the admin's history follow them (skipped for a model whose new
    content type exists already)."""

    def move(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        for model in names:
            if content_type.objects.using(db).filter(app_label=to, model=model).exists():
                continue
            content_type.objects.using(db).filter(app_label=app_label, model=model).update(app_label=to)

    return move
