"""The chat app takes over its models from the agents app (migration
agents 0003): same tables, same rows; content types and permissions follow."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models

from agenthub.migrationops import content_types_move


MODELS = ('conversation', 'message')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ('accounts', '0002_invitations'),
        ('agents', '0003_move_chat_and_tools_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (db_table keeps their names): only
        # Django's idea of which app owns the models changes.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Conversation',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('visitor_id', models.CharField(blank=True, max_length=64)),
                        ('channel', models.CharField(choices=[('websocket', 'Websocket'), ('rest', 'REST'), ('openai', 'OpenAI-compatible'), ('admin', 'Admin test chat'), ('cli', 'Terminal')], max_length=16)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('status', models.CharField(choices=[('active', 'Active'), ('closed', 'Closed')], default='active', max_length=16)),
                        ('last_seq', models.BigIntegerField(default=0, help_text='Sequence number of the last event of the last turn.')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('agent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conversations', to='agents.agent')),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to=settings.AUTH_USER_MODEL)),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='conversations', to='agents.agentversion')),
                    ],
                    options={
                        'db_table': 'agents_conversation',
                        'ordering': ['-updated_at'],
                    },
                ),
                migrations.CreateModel(
                    name='Message',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('role', models.CharField(choices=[('system', 'System'), ('user', 'User'), ('assistant', 'Assistant'), ('tool', 'Tool')], max_length=16)),
                        ('content', models.TextField(blank=True)),
                        ('tool_calls', models.JSONField(blank=True, default=list)),
                        ('tool_call_id', models.CharField(blank=True, max_length=100)),
                        ('client_msg_id', models.CharField(blank=True, max_length=100, null=True)),
                        ('model', models.CharField(blank=True, max_length=100)),
                        ('tokens_in', models.PositiveIntegerField(default=0)),
                        ('tokens_out', models.PositiveIntegerField(default=0)),
                        ('ttft_ms', models.FloatField(blank=True, null=True)),
                        ('latency_ms', models.FloatField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('complete', 'Complete'), ('streaming', 'Streaming'), ('interrupted', 'Interrupted'), ('cancelled', 'Cancelled'), ('error', 'Error')], default='complete', max_length=16)),
                        ('error', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='chat.conversation')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                        ('reply_to', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replies', to='chat.message')),
                    ],
                    options={
                        'db_table': 'agents_message',
                        'ordering': ['created_at'],
                    },
                ),
                migrations.AddIndex(
                    model_name='conversation',
                    index=models.Index(fields=['organization', 'agent', '-updated_at'], name='agents_conv_organiz_39c2af_idx'),
                ),
                migrations.AddIndex(
                    model_name='message',
                    index=models.Index(fields=['conversation', 'created_at'], name='agents_mess_convers_0df5a4_idx'),
                ),
                migrations.AddConstraint(
                    model_name='message',
                    constraint=models.UniqueConstraint(condition=models.Q(('client_msg_id__isnull', False)), fields=('conversation', 'client_msg_id'), name='agents_message_unique_client_msg_id'),
                ),
            ],
        ),
        migrations.RunPython(
            content_types_move("agents", MODELS, to="chat"),
            content_types_move("chat", MODELS, to="agents"),
        ),
    ]
