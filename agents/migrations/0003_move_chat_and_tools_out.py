"""Conversations and messages move to the chat app; HTTP tools, tool
invocations and drafts to the tools app.  Their tables and rows stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0002_tools_and_drafts'),
    ]

    operations = [
        # The tables stay where they are (db_table keeps their names): only
        # Django's idea of which app owns the models changes.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='draft',
                    name='conversation',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='conversation',
                ),
                migrations.RemoveField(
                    model_name='message',
                    name='conversation',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='agent',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='decided_by',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='decided_by_api_key',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='requested_by',
                ),
                migrations.RemoveField(
                    model_name='draft',
                    name='requested_by_api_key',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='draft',
                ),
                migrations.RemoveField(
                    model_name='httptool',
                    name='credential',
                ),
                migrations.RemoveField(
                    model_name='httptool',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='message',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='message',
                    name='reply_to',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='agent',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='api_key',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='toolinvocation',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='Conversation',
                ),
                migrations.DeleteModel(
                    name='Draft',
                ),
                migrations.DeleteModel(
                    name='HttpTool',
                ),
                migrations.DeleteModel(
                    name='Message',
                ),
                migrations.DeleteModel(
                    name='ToolInvocation',
                ),
            ],
        ),
    ]
