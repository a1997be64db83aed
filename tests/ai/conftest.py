"""ai's stubs (one channel to the in-process ai host) and small shared helpers."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from givance.ai.v1 import (
    classification_service_pb2_grpc,
    generation_service_pb2_grpc,
    research_service_pb2_grpc,
    settings_service_pb2_grpc,
)


@dataclass
class AiStubs:
    settings: settings_service_pb2_grpc.AiSettingsServiceStub
    research: research_service_pb2_grpc.ResearchServiceStub
    generation: generation_service_pb2_grpc.GenerationServiceStub
    classification: classification_service_pb2_grpc.ClassificationServiceStub


@pytest.fixture(scope="session")
async def ai(hosts) -> AiStubs:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{hosts['ai'].bound_port}")
    yield AiStubs(settings_service_pb2_grpc.AiSettingsServiceStub(channel),
                  research_service_pb2_grpc.ResearchServiceStub(channel),
                  generation_service_pb2_grpc.GenerationServiceStub(channel),
                  classification_service_pb2_grpc.ClassificationServiceStub(channel))
    await channel.close()
