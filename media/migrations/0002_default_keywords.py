"""The default nomenclature: anatomical sites and photo contexts.

Institutions edit it in /admin/ or with `manage.py load_keywords FILE`; the
list is frozen here (a migration must not change when the code does).
"""

from django.db import migrations

SITES = [
    ("head-neck", "Head and neck"),
    ("face", "Face"),
    ("scalp", "Scalp"),
    ("trunk", "Trunk"),
    ("chest", "Chest"),
    ("breast", "Breast"),
    ("abdomen", "Abdomen"),
    ("back", "Back"),
    ("sacrum", "Sacrum"),
    ("perineum", "Perineum"),
    ("upper-limb", "Upper limb"),
    ("hand", "Hand"),
    ("lower-limb", "Lower limb"),
    ("knee", "Knee"),
    ("foot", "Foot"),
    ("heel", "Heel"),
]
CONTEXTS = [
    ("pre-operative", "Pre-operative"),
    ("post-operative", "Post-operative"),
    ("wound-follow-up", "Wound follow-up"),
    ("lesion", "Lesion"),
    ("consultation", "Consultation"),
    ("pressure-ulcer", "Pressure ulcer"),
    ("burn", "Burn"),
    ("flap-monitoring", "Flap monitoring"),
    ("dressing", "Dressing"),
    ("imaging-document", "Imaging or document"),
]


def add_defaults(apps, schema_editor):
    Keyword = apps.get_model("media", "Keyword")
    for category, terms in (("site", SITES), ("context", CONTEXTS)):
        for code, label in terms:
            Keyword.objects.get_or_create(code=code, defaults={"label": label, "category": category})


class Migration(migrations.Migration):
    dependencies = [("media", "0001_initial")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
