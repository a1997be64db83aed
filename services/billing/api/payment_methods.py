"""PaymentMethodService: the card the platform charges for the organization's subscription."""

from __future__ import annotations

from givance.billing.v1 import payment_method_pb2, payment_method_service_pb2_grpc
from givance.billing.v1 import payment_method_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.db import Database
from chassis.resource import etag
from services.billing.handlers import payment_methods as handlers
from services.billing.providers.platform_payments import PlatformCards


def method_to_proto(row: dict) -> payment_method_pb2.PaymentMethod:
    return payment_method_pb2.PaymentMethod(
        id=row["payment_method_id"], customer_id=row["customer_id"], brand=row["brand"], last4=row["last4"],
        exp_month=row["exp_month"], exp_year=row["exp_year"], update_time=timestamp(row["updated_at"]),
        etag=etag(row["version"]))


class PaymentMethodServicer(payment_method_service_pb2_grpc.PaymentMethodServiceServicer):
    def __init__(self, db: Database, cards: PlatformCards | None, publishable_key: str = ""):
        self.db, self.cards, self.publishable_key = db, cards, publishable_key

    async def SetupPaymentMethod(self, request: pb.SetupPaymentMethodRequest, ctx) -> pb.SetupPaymentMethodResponse:
        s = await handlers.setup(self.db, self.cards, context.current().tenant_id, request.request_id)
        return pb.SetupPaymentMethodResponse(setup_intent_id=s.setup_intent_id, client_secret=s.client_secret,
                                             customer_id=s.customer_id, publishable_key=self.publishable_key)

    async def GetPaymentMethod(self, request: pb.GetPaymentMethodRequest, ctx) -> pb.GetPaymentMethodResponse:
        row = await handlers.get(self.db, context.current().tenant_id)
        return pb.GetPaymentMethodResponse(payment_method=method_to_proto(row) if row else None)

    async def DeletePaymentMethod(self, request: pb.DeletePaymentMethodRequest, ctx) -> pb.DeletePaymentMethodResponse:
        row = await handlers.delete(self.db, self.cards, context.current().tenant_id, request.etag)
        return pb.DeletePaymentMethodResponse(payment_method=method_to_proto(row))
