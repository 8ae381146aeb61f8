from django.apps import AppConfig


class PushConfig(AppConfig):
    name = "push"
    verbose_name = "Push notifications"

    def ready(self) -> None:
        from push import signals  # noqa: F401  (sign-out removes the device's subscriptions)
