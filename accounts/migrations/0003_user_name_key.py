from typing import Any

from django.db import migrations, models


def fill(apps: Any, schema_editor: Any) -> None:
    from accounts.models import names_key

    User = apps.get_model("accounts", "User")
    for user in User.objects.all().only("pk", "display_name", "first_name", "last_name"):
        User.objects.filter(pk=user.pk).update(name_key=names_key(user))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_keybackup_identitykey_institutionkey")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="name_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=500),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
