"""Three indexes each post wrote for nothing: the unique (thread, seq), (sender,
client_msg_id) and (department, seq) already lead with the column each one held.

Only the indexes go: Django's own AlterField would drop and re-add the foreign keys,
checking every row of the largest tables again under lock.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_event_thread_patient_changed"),
        ("rooms", "0004_oncall_roster"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="department",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="rooms.department",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="sender",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="thread",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="chat.thread",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
                )
                for index, table, column in [
                    ("chat_event_department_id_ae1a7808", "chat_event", "department_id"),
                    ("chat_message_sender_id_991c686c", "chat_message", "sender_id"),
                    ("chat_message_thread_id_6a43dfba", "chat_message", "thread_id"),
                ]
            ],
        ),
    ]
