"""The tools app takes over its models from the agents app (migration
agents 0003): same tables, same rows; content types and permissions follow."""

import django.core.validators
import django.db.models.deletion
import tools.models
import uuid
from django.conf import settings
from django.db import migrations, models

from agenthub.migrationops import content_types_move


MODELS = ('httptool', 'toolinvocation', 'draft')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ('accounts', '0002_invitations'),
        ('agents', '0003_move_chat_and_tools_out'),
        ('chat', '0001_initial'),
        ('integrations', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (db_table keeps their names): only
        # Django's idea of which app owns the models changes.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Draft',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('tool', models.CharField(db_index=True, max_length=64)),
                        ('call_id', models.CharField(blank=True, max_length=100)),
                        ('summary', models.CharField(blank=True, max_length=500)),
                        ('arguments', models.JSONField(default=dict, help_text='The arguments the agent proposed.')),
                        ('edited_arguments', models.JSONField(blank=True, help_text='The arguments as edited by the approver (run instead).', null=True)),
                        ('requested_role', models.CharField(blank=True, max_length=16)),
                        ('approver_role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('operator', 'Operator'), ('member', 'Member'), ('viewer', 'Viewer')], default='operator', max_length=16)),
                        ('allow_self_approval', models.BooleanField(default=True)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('confirmed', 'Confirmed'), ('executing', 'Executing'), ('executed', 'Executed'), ('failed', 'Failed'), ('rejected', 'Rejected'), ('expired', 'Expired')], default='pending', max_length=16)),
                        ('decision_note', models.CharField(blank=True, max_length=1000)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('expires_at', models.DateTimeField()),
                        ('result', models.TextField(blank=True)),
                        ('error', models.TextField(blank=True)),
                        ('attempts', models.PositiveSmallIntegerField(default=0, help_text='Deliveries of the execution task.')),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('executed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('agent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='drafts', to='agents.agent')),
                        ('conversation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='drafts', to='chat.conversation')),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('decided_by_api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('requested_by_api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apikey')),
                    ],
                    options={
                        'db_table': 'agents_draft',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='HttpTool',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('name', models.CharField(max_length=64, validators=[django.core.validators.RegexValidator('^[a-zA-Z][a-zA-Z0-9_-]{0,63}$', 'Letters, digits, _ and -, starting with a letter (at most 64).')])),
                        ('description', models.TextField(help_text='What the tool does; the model reads this.', max_length=2000)),
                        ('parameters', models.JSONField(blank=True, default=tools.models._default_parameters, help_text='JSON schema of the arguments.')),
                        ('method', models.CharField(choices=[('GET', 'GET'), ('POST', 'POST'), ('PUT', 'PUT'), ('PATCH', 'PATCH'), ('DELETE', 'DELETE')], default='POST', max_length=8)),
                        ('url_template', models.CharField(help_text='e.g. https://api.example.com/assets/{asset_id}', max_length=2000)),
                        ('headers', models.JSONField(blank=True, default=dict, help_text='Extra request headers (no secrets here).')),
                        ('min_role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('operator', 'Operator'), ('member', 'Member'), ('viewer', 'Viewer')], default='member', max_length=16)),
                        ('requires_approval', models.BooleanField(default=False)),
                        ('approver_role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('operator', 'Operator'), ('member', 'Member'), ('viewer', 'Viewer')], default='operator', max_length=16)),
                        ('allow_self_approval', models.BooleanField(default=True)),
                        ('execution', models.CharField(choices=[('inline', 'Inline, in the turn'), ('celery', 'On the Celery tools queue')], default='celery', max_length=8)),
                        ('timeout_seconds', models.PositiveSmallIntegerField(default=15, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(240)])),
                        ('max_result_chars', models.PositiveIntegerField(default=16000, validators=[django.core.validators.MinValueValidator(100), django.core.validators.MaxValueValidator(1000000)])),
                        ('enabled', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('credential', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='integrations.credential')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'verbose_name': 'HTTP tool',
                        'db_table': 'agents_httptool',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ToolInvocation',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('tool', models.CharField(db_index=True, max_length=64)),
                        ('call_id', models.CharField(blank=True, max_length=100)),
                        ('role', models.CharField(blank=True, max_length=16)),
                        ('arguments', models.JSONField(blank=True, default=dict)),
                        ('result', models.TextField(blank=True)),
                        ('result_truncated', models.BooleanField(default=False)),
                        ('status', models.CharField(choices=[('ok', 'Succeeded'), ('error', 'Failed'), ('timeout', 'Timed out'), ('refused', 'Refused (not allowed)'), ('invalid', 'Invalid arguments'), ('drafted', 'Draft created, awaiting approval')], max_length=16)),
                        ('error', models.TextField(blank=True)),
                        ('execution', models.CharField(choices=[('inline', 'Inline, in the turn'), ('celery', 'On the Celery tools queue')], default='inline', max_length=8)),
                        ('duration_ms', models.FloatField(blank=True, null=True)),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('idempotency_key', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('agent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='agents.agent')),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apikey')),
                        ('conversation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='tool_invocations', to='chat.conversation')),
                        ('draft', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='invocations', to='tools.draft')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'agents_toolinvocation',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddIndex(
                    model_name='draft',
                    index=models.Index(fields=['organization', 'status', '-created_at'], name='agents_draf_organiz_10d6d5_idx'),
                ),
                migrations.AddIndex(
                    model_name='draft',
                    index=models.Index(fields=['status', 'expires_at'], name='agents_draf_status_1d7df0_idx'),
                ),
                migrations.AddConstraint(
                    model_name='httptool',
                    constraint=models.UniqueConstraint(fields=('organization', 'name'), name='agents_httptool_unique_name'),
                ),
                migrations.AddIndex(
                    model_name='toolinvocation',
                    index=models.Index(fields=['organization', '-created_at'], name='agents_tool_organiz_f4fb32_idx'),
                ),
                migrations.AddIndex(
                    model_name='toolinvocation',
                    index=models.Index(fields=['organization', 'tool'], name='agents_tool_organiz_b328c1_idx'),
                ),
            ],
        ),
        migrations.RunPython(
            content_types_move("agents", MODELS, to="tools"),
            content_types_move("tools", MODELS, to="agents"),
        ),
    ]
